"""The ceiling: onnxruntime alone, in this process, with the service's own session options; and
what each PNG compression level costs per image."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime as ort

from common.images import png_bytes, to_uint8
from service.core.loading import session_options

BATCHES = (1, 16, 64, 256)


def per_call_seconds(call: Callable[[], object], seconds: float, slices: int = 5) -> float:
    """Median time of one call over ``slices`` timed slices of about ``seconds`` in all."""
    call()  # warm
    times = []
    for _ in range(slices):
        count, start, deadline = 0, time.perf_counter(), time.perf_counter() + seconds / slices
        while count == 0 or time.perf_counter() < deadline:
            call()
            count += 1
        times.append((time.perf_counter() - start) / count)
    return statistics.median(times)


def network_ceiling(path: Path, inputs: np.ndarray, threads: int, seconds: float) -> dict[int, float]:
    """Images per second of one network at each batch size; ``inputs`` holds at least max(BATCHES)."""
    session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return {
        batch: batch / per_call_seconds(partial(session.run, None, {name: inputs[:batch]}), seconds)
        for batch in BATCHES
    }


def png_costs(x_mean: np.ndarray, levels: tuple[int, ...], seconds: float) -> dict[int, tuple[float, float]]:
    """level -> (microseconds, bytes) per image, over the images of ``x_mean``."""
    images = to_uint8(x_mean)
    costs = {}
    for level in levels:
        per_call = per_call_seconds(partial(_encode_all, images, level), seconds)
        size = statistics.mean(len(png_bytes(img, level)) for img in images)
        costs[level] = (per_call / len(images) * 1e6, size)
    return costs


def _encode_all(images: np.ndarray, level: int) -> list[bytes]:
    return [png_bytes(image, level) for image in images]
