"""The peer every comparison starts from: /decode written the obvious way with FastAPI, as a user
who needs the endpoint today would write it (a pydantic body, a sync handler in the threadpool, one
onnxruntime session, Pillow's PNG, base64 in JSON), served by uvicorn with its defaults.

``NAIVE_MODEL=models/mnist/1 uvicorn benchmarks.naive:app``; nothing here is part of the service.
"""

from __future__ import annotations

import base64
import io
import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from PIL import Image
from pydantic import BaseModel

options = ort.SessionOptions()
options.intra_op_num_threads = 1  # as the service runs its sessions, so the comparison is of the rest
decoder = ort.InferenceSession(
    os.path.join(os.environ.get("NAIVE_MODEL", "models/mnist/1"), "decoder.onnx"),
    options,
    providers=["CPUExecutionProvider"],
)
app = FastAPI()


class DecodeRequest(BaseModel):
    z: list[list[float]]


@app.post("/decode")
def decode(request: DecodeRequest) -> dict:
    x_mean = decoder.run(["x_mean"], {"z": np.asarray(request.z, dtype=np.float32)})[0]
    images = []
    for image in x_mean:
        buffer = io.BytesIO()
        Image.fromarray((image[0] * 255).round().astype(np.uint8)).save(buffer, format="PNG")
        images.append(base64.b64encode(buffer.getvalue()).decode())
    return {"images": images}
