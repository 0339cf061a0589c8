"""Every setting of the service, read from ``VAE_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_WORKERS = 64
CGROUP_CPU = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity, within its cgroup's CPU quota (a container's
    --cpus, a pod's CPU limit), rounded up; 1 to MAX_WORKERS."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU.read_text().split()
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):  # no cgroup v2 here, or no quota
        pass
    return max(1, min(cpus, MAX_WORKERS))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VAE_", env_file=".env", extra="ignore")

    models_dir: Path = Field(Path("models"), description="Model repository: <name>/<version>/ folders.")
    default_model: str = Field("mnist", description="Model name used when a request names none.")
    host: str = Field("127.0.0.1", description="Address `python -m service` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `python -m service` binds.")
    workers: int = Field(
        default_factory=usable_cpus,
        ge=1,
        le=MAX_WORKERS,
        description="uvicorn worker processes; 'auto' (the default): one per CPU the process may use "
        "(its affinity and cgroup quota). One worker's event loop is the limit of its requests/s, so "
        "throughput grows with workers up to the cores (docs/performance.md, Workers).",
    )

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: Any) -> Any:
        return usable_cpus() if value == "auto" else value

    shutdown_grace_seconds: int = Field(
        30, ge=0, description="On SIGTERM, how long in-flight requests may take before workers stop."
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies trusted for X-Forwarded-For (comma-separated, or * behind a private gateway).",
    )
    max_connections: int = Field(
        1024, ge=1, description="Most open connections and requests per worker; beyond, uvicorn answers 503."
    )
    max_in_flight: int = Field(
        256,
        ge=1,
        description="Most requests one worker works on at once; beyond it 503 with Retry-After at once, "
        "so the ones admitted are answered in bounded time (probes and /metrics are not counted).",
    )
    max_header_bytes: int = Field(
        16384, ge=1024, le=1 << 20, description="Largest request line and headers together; beyond it 431."
    )
    head_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Most seconds from a connection's opening (or a new request's first byte) to the end "
        "of its headers; beyond it the connection is closed (408 when something had arrived).",
    )
    request_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Most seconds a request may take, body upload included: 408 while the body is still "
        "arriving, 503 with Retry-After once it is in.",
    )
    api_tokens: SecretStr | None = Field(
        None, description="Bearer tokens (comma-separated) every endpoint but /healthz and /readyz requires."
    )
    api_tokens_file: Path | None = Field(
        None, description="A file of bearer tokens, one per line; with VAE_API_TOKENS both are accepted."
    )
    admin_token: SecretStr | None = Field(
        None, description="Enables POST /admin/reload for requests bearing this token (off when unset)."
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Serve /metrics on this port of VAE_HOST instead of the API port."
    )
    ort_threads: int = Field(
        1, ge=0, le=64, description="onnxruntime intra-op threads per session (0: all cores)."
    )
    max_batch_size: int = Field(
        256, ge=1, description="Most rows in one merged onnxruntime run (1: no dynamic batching)."
    )
    max_batch_delay_ms: float = Field(
        0.0, ge=0, le=1000, description="How long a batch that is not full waits for more requests."
    )
    max_queue: int = Field(
        1024, ge=1, description="Most requests waiting per model network; beyond it 503 with Retry-After."
    )
    max_inline_rows: int = Field(
        16, ge=0, description="Batches of up to this many rows run on the event loop, larger in a thread."
    )
    max_images: int = Field(64, ge=1, le=1024, description="Most images (uploads, latents) in one request.")
    max_n: int = Field(256, ge=1, description="Largest n of /sample.")
    max_steps: int = Field(64, ge=2, description="Largest steps of /interpolate.")
    max_body_bytes: int = Field(16 << 20, ge=1024, description="Largest request body in bytes.")
    max_body_memory_bytes: int = Field(
        32 << 20,
        ge=1024,
        description="Most bytes of request bodies one worker holds at once; a request that would go over "
        "is refused with 503 and Retry-After (one request alone is always admitted).",
    )
    max_image_bytes: int = Field(4 << 20, ge=1024, description="Largest single uploaded image in bytes.")
    max_image_pixels: int = Field(
        16_000_000, ge=1, description="Largest uploaded image, width x height (decompression bombs)."
    )
    decode_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Requests whose large images (over 262,144 pixels in all) are decoded at once per "
        "worker, each in a thread: what bounds the memory that decoding holds.",
    )
    max_request_pixels: int = Field(
        64_000_000,
        ge=1,
        description="Most pixels of all the images of one request together, as their headers declare.",
    )
    max_temperature: float = Field(10.0, gt=0, description="Largest temperature of /sample.")
    max_score_k: int = Field(5000, ge=1, description="Largest k (importance samples an image) of /score.")
    max_score_rows: int = Field(
        131072,
        ge=1,
        description="Most decoder rows one /score request may cost: k times the number of images.",
    )
    png_compress_level: int = Field(
        0,
        ge=0,
        le=9,
        description="zlib level of PNG output (0 stored: fastest; 1..9 smaller and slower).",
    )
    access_log: bool = Field(True, description="One log line per request.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text or one JSON object each."
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
