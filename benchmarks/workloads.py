"""What the benchmark sends: one request body per workload, the same for every request.

The images to encode are real MNIST-style digits: the shipped decoder's own samples, as PNG.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import numpy as np

from common.images import png_bytes, to_uint8
from harness.probe import multipart
from service.api.npy import NPY, npy_bytes

JSON = "application/json"
OCTETS = "application/octet-stream"
BOUNDARY = "vae-bench-boundary"


@dataclass(frozen=True)
class Workload:
    name: str
    path: str
    body: bytes
    content_type: str
    accept: str
    images: int  # per request
    network: str  # whose ceiling it is measured against
    headers: tuple[tuple[str, str], ...] = ()  # besides Content-Type and Accept


def workloads(latent_dim: int, digits: np.ndarray) -> list[Workload]:
    """``digits``: x_mean [N, 1, H, W] from the model's decoder, at least 16 of them."""
    z = np.random.default_rng(0).standard_normal((16, latent_dim)).astype(np.float32)
    uploads = [png_bytes(image, 6) for image in to_uint8(digits[:16])]
    return [
        Workload("/decode, 1 latent, JSON", "/decode", _json({"z": z[:1]}), JSON, JSON, 1, "decoder"),
        Workload("/decode, 16 latents, JSON", "/decode", _json({"z": z}), JSON, JSON, 16, "decoder"),
        Workload("/decode, 16 latents, .npy", "/decode", npy_bytes(z), NPY, NPY, 16, "decoder"),
        Workload("/sample, n=64, JSON", "/sample", _json({"n": 64, "seed": 1}), JSON, JSON, 64, "decoder"),
        Workload(
            "/encode, 16 PNGs, JSON base64",
            "/encode",
            _json({"images": [base64.b64encode(u).decode() for u in uploads]}),
            JSON,
            JSON,
            16,
            "encoder",
        ),
        Workload(
            "/encode, 16 PNG uploads",
            "/encode",
            multipart(uploads, BOUNDARY),
            f"multipart/form-data; boundary={BOUNDARY}",
            JSON,
            16,
            "encoder",
        ),
    ]


def v2_workloads(model: str, latent_dim: int, sizes: tuple[int, ...] = (1, 16, 64)) -> list[Workload]:
    """Open Inference Protocol inference on ``<model>-decoder``, asking for x_mean only: its tensors
    in JSON, and as binary data after the JSON header (tritonclient's default), at each size."""
    z = np.random.default_rng(0).standard_normal((max(sizes), latent_dim)).astype(np.float32)
    path = f"/v2/models/{model}-decoder/infer"
    found = []
    for n in sizes:
        tensor = {"name": "z", "shape": [n, latent_dim], "datatype": "FP32"}
        as_json = {"inputs": [tensor | {"data": z[:n].ravel().tolist()}], "outputs": [{"name": "x_mean"}]}
        header = json.dumps(
            {
                "inputs": [tensor | {"parameters": {"binary_data_size": z[:n].nbytes}}],
                "outputs": [{"name": "x_mean", "parameters": {"binary_data": True}}],
            }
        ).encode()
        rows = "latent" if n == 1 else "latents"
        found += [
            Workload(
                f"V2 infer, {n} {rows}, JSON", path, json.dumps(as_json).encode(), JSON, JSON, n, "decoder"
            ),
            Workload(
                f"V2 infer, {n} {rows}, binary",
                path,
                header + z[:n].tobytes(),
                OCTETS,
                OCTETS,
                n,
                "decoder",
                (("Inference-Header-Content-Length", str(len(header))),),
            ),
        ]
    return found


def _json(content: dict) -> bytes:
    return json.dumps(
        {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in content.items()}
    ).encode()
