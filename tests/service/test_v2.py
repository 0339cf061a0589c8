"""The Open Inference Protocol endpoints, driven by the real tritonclient package against a real
server, in both of its encodings (binary tensors, its default, and JSON)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from harness.ports import free_port
from harness.processes import service

pytestmark = pytest.mark.server  # starts real processes


@pytest.fixture(scope="module")
def url(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    with service(model_repository, tmp_path_factory.mktemp("v2"), port, default_model="digits"):
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(url=url)
    yield c
    c.close()


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    assert client.is_model_ready("digits-encoder") and client.is_model_ready("digits-decoder", "2")
    assert not client.is_model_ready("digits-critic")
    meta = client.get_model_metadata("digits-encoder")
    assert meta["versions"] == ["2", "10"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]  # 8x8 digits
    assert [o["name"] for o in meta["outputs"]] == ["mu", "logvar"]
    decoder = client.get_model_metadata("digits-decoder", "2")
    assert decoder["inputs"] == [{"name": "z", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in decoder["outputs"]] == ["x_mean", "logits"]


@pytest.mark.parametrize("binary", [True, False])
def test_encode_then_decode_agrees_with_the_native_api(
    client: triton.InferenceServerClient, url: str, binary: bool
) -> None:
    from sklearn.datasets import load_digits

    x = (load_digits().images[:5, None] / 16.0).astype(np.float32)  # the model's own input: 8x8 in [0, 1]
    given = triton.InferInput("x", list(x.shape), "FP32")
    given.set_data_from_numpy(x, binary_data=binary)
    wanted = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("mu", "logvar")]
    result = client.infer("digits-encoder", [given], outputs=wanted, request_id="r1")
    mu, logvar = result.as_numpy("mu"), result.as_numpy("logvar")
    assert mu.shape == logvar.shape == (5, 4) and mu.dtype == np.float32
    assert result.get_response()["id"] == "r1" and result.get_response()["model_version"] == "10"

    z = triton.InferInput("z", list(mu.shape), "FP32")
    z.set_data_from_numpy(mu, binary_data=binary)
    decoded = client.infer("digits-decoder", [z], model_version="2")
    x_mean, logits = decoded.as_numpy("x_mean"), decoded.as_numpy("logits")
    assert x_mean.shape == logits.shape == (5, 1, 8, 8)
    np.testing.assert_allclose(x_mean, 1 / (1 + np.exp(-logits)), atol=1e-6)
    native = httpx.post(
        f"http://{url}/decode",
        json={"z": mu.tolist(), "version": "2", "format": "array"},
    ).json()
    np.testing.assert_allclose(np.array(native["arrays"], dtype=np.float32), x_mean, atol=1e-6)


@pytest.mark.parametrize(
    ("model", "tensor", "datatype", "shape", "message"),
    [
        ("digits-critic", "z", "FP32", [1, 4], "no model named 'digits-critic'"),
        ("digits-decoder", "z", "FP64", [1, 4], "this model takes FP32"),
        ("digits-decoder", "z", "FP32", [1, 5], "the model takes [-1, 4]"),
        ("digits-decoder", "x", "FP32", [1, 4], "takes exactly one input, 'z'"),
        ("digits-encoder", "x", "FP32", [1, 1, 7, 8], "the model takes [-1, 1, 8, 8]"),
        ("digits-decoder", "z", "FP32", [65, 4], "65 rows, more than the limit of 64"),
    ],
)
def test_errors_are_the_protocols(
    client: triton.InferenceServerClient,
    model: str,
    tensor: str,
    datatype: str,
    shape: list[int],
    message: str,
) -> None:
    given = triton.InferInput(tensor, shape, datatype)
    given.set_data_from_numpy(np.zeros(shape, dtype=np.float64 if datatype == "FP64" else np.float32))
    with pytest.raises(InferenceServerException, match=message.replace("[", r"\[").replace("]", r"\]")):
        client.infer(model, [given])


def test_error_bodies_are_json_with_an_error_field(url: str) -> None:
    response = httpx.post(f"http://{url}/v2/models/digits-decoder/infer", json={"inputs": "nope"})
    assert response.status_code == 400 and "error" in response.json() and "detail" not in response.json()
    nan = b'{"inputs": [{"name": "z", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, NaN]}]}'
    response = httpx.post(f"http://{url}/v2/models/digits-decoder/infer", content=nan)
    assert response.status_code == 422 and response.json() == {
        "field": "inputs[z].data",
        "error": "inputs[z].data: values must be finite",
    }
