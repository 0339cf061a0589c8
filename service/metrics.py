"""Every Prometheus metric of the service, created here and nowhere else.

With several uvicorn workers, ``PROMETHEUS_MULTIPROC_DIR`` must name an empty folder before the
workers start (``python -m service`` sees to it): each worker then writes its values there and
``/metrics`` adds them up across workers.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics import MetricWrapperBase

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "vae_requests_total",
    "HTTP requests answered, by endpoint, model and status.",
    ["endpoint", "model", "version", "status"],
)
REQUEST_LATENCY = Histogram(
    "vae_request_duration_seconds",
    "Time from request to response of the requests admitted (not shed), by endpoint.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_LATENCY = Histogram(
    "vae_inference_duration_seconds",
    "Time of one onnxruntime run, by model and network.",
    ["model", "version", "network"],
    buckets=LATENCY_BUCKETS,
)
IMAGES = Counter(
    "vae_images_total",
    "Images encoded (uploads) or generated (decoded outputs).",
    ["endpoint", "model", "version"],
)
SCORE_ROWS = Counter(
    "vae_score_rows_total",
    "Decoder rows run for /score: K importance samples for each image scored.",
    ["model", "version"],
)
BATCH_SIZE = Histogram(
    "vae_batch_size",
    "Rows (images or latents) in one onnxruntime run, after dynamic batching merged requests.",
    ["model", "version", "network"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
QUEUE_DEPTH = Gauge(
    "vae_queue_depth",
    "Requests waiting for a batched run.",
    ["model", "version", "network"],
    multiprocess_mode="livesum",
)
REJECTED = Counter(
    "vae_rejected_total",
    "Requests refused with 503 because the model's queue was full.",
    ["model", "version", "network"],
)
SHED = Counter(
    "vae_shed_total",
    "Requests refused with 503 on arrival because VAE_MAX_IN_FLIGHT requests were being answered.",
    ["endpoint"],
)
BUDGET_REFUSED = Counter(
    "vae_body_budget_refused_total",
    "Requests refused with 503 because their body would take the worker past VAE_MAX_BODY_MEMORY_BYTES.",
    ["endpoint"],
)
BODY_BYTES = Gauge(
    "vae_request_body_bytes",
    "Bytes of request bodies reserved by the requests being answered (the body budget in use).",
    multiprocess_mode="livesum",
)
TIMEOUTS = Counter(
    "vae_request_timeouts_total",
    "Requests cut off by VAE_REQUEST_TIMEOUT_SECONDS (408 while uploading, else 503), by endpoint.",
    ["endpoint"],
)
RELOADS = Counter(
    "vae_model_reloads_total",
    "Rescans of the model folder (SIGHUP or POST /admin/reload), by outcome: ok, or failed when a "
    "folder was refused (the version served before it, if any, goes on serving).",
    ["outcome"],
)
IN_FLIGHT = Gauge("vae_requests_in_flight", "Requests being answered now.", multiprocess_mode="livesum")
MODELS_REFUSED = Gauge(
    "vae_models_refused",
    "Model folders refused at the last scan (start-up or reload); why is on GET /models.",
    multiprocess_mode="max",
)
MODEL_INFO = Gauge(
    "vae_model_info",
    "Models being served (value 1), with their latent dimension.",
    ["model", "version", "latent_dim"],
    multiprocess_mode="max",
)


@lru_cache(maxsize=4096)  # label values are bounded: endpoints, served models, status codes
def child(metric: MetricWrapperBase, *values: str) -> Any:
    """``metric.labels(*values)``, made once: prometheus_client checks and locks on every call."""
    return metric.labels(*values)


def registry() -> CollectorRegistry:
    """What a scrape reads: in multiprocess mode, the values of every worker added up."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        summed = CollectorRegistry()
        multiprocess.MultiProcessCollector(summed)
        return summed
    return REGISTRY


def render() -> tuple[bytes, str]:
    """The exposition text for a scrape."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST
