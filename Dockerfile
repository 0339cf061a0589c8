# The serving image: FastAPI + onnxruntime and the shipped models; no torch, no compiler, not root.
#   docker build -t vae-service .                       (make image)
#   docker run -p 8000:8000 -e VAE_WORKERS=2 vae-service
# One worker by default (VAE_WORKERS=1 below): a container is scaled by its replicas; VAE_WORKERS=auto
# gives one worker per CPU of its quota (--cpus, a pod's CPU limit).
# Every VAE_* setting (docs/configuration.md) can be given with -e; mount a model repository on
# /models to serve other models than the baked-in ones.
#
# The base is pinned by digest, as the requirements are by hash (refresh it with
# `docker buildx imagetools inspect python:3.11-slim-bookworm`); PYTHON_IMAGE names another base,
# e.g. one built locally where no registry is reachable (make image-test does so).
# A package index and a CA bundle for pip (behind a proxy that intercepts TLS) are given to the build
# only, never kept in the image:
#   docker build --build-arg PIP_INDEX_URL=https://... --secret id=pip-ca,src=/path/to/ca.pem .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# Stage 1: the virtual environment, from pinned and hash-checked wheels only.
FROM ${PYTHON_IMAGE} AS install
WORKDIR /build
COPY deploy/install.sh deploy/requirements.txt deploy/
ARG PIP_INDEX_URL
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    deploy/install.sh /opt/venv

# Stage 2: what runs. Only the venv, the service's source and the models are copied in.
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="vae-service" \
      org.opencontainers.image.description="Encode, decode, sample and interpolate with a trained VAE over HTTP."
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VAE_HOST=0.0.0.0 \
    VAE_PORT=8000 \
    VAE_WORKERS=1 \
    VAE_MODELS_DIR=/models \
    VAE_LOG_FORMAT=json \
    PROMETHEUS_MULTIPROC_DIR=/tmp/vae-metrics
# numeric, so Kubernetes can check runAsNonRoot
RUN groupadd --system --gid 10001 vae \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin vae
COPY --from=install /opt/venv /opt/venv
WORKDIR /app
COPY common/ common/
COPY service/ service/
# bytecode compiled now: the app folder is read-only to the service user
RUN python -m compileall -q common service
COPY models/ /models/
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "service.healthcheck"]
# uvicorn runs as PID 1 and handles SIGTERM itself: it stops accepting, lets in-flight requests
# finish for up to VAE_SHUTDOWN_GRACE_SECONDS, then exits (give `docker stop -t` a little more).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "service"]
