"""The binary array path: .npy latents in, .npy images out, and .npy bodies that lie."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.npy import NPY, npy_bytes, read_npy
from service.core.errors import BadRequest, Unprocessable


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_read_back_what_numpy_writes() -> None:
    z = np.random.default_rng(0).standard_normal((3, 4))
    for array in (z.astype(np.float32), z, np.asfortranarray(z), z.astype(">f4"), z.astype(np.float16)):
        np.testing.assert_array_equal(read_npy(_npy(array), "z"), array)
    assert np.array_equal(np.load(io.BytesIO(npy_bytes(z.astype(np.float32)))), z.astype(np.float32))


def test_a_header_that_declares_a_huge_shape_allocates_nothing() -> None:
    header = _npy(np.zeros((1, 4), np.float32))
    forged = header.replace(b"(1, 4)", b"(10000000000, 4)")[: len(header) - 16]
    with pytest.raises(BadRequest, match=r"declares shape \(10000000000, 4\).*holds 0 bytes"):
        read_npy(forged, "z")


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b"not an array", BadRequest, "not a .npy array"),
        (_npy(np.zeros((1, 4), np.int64)), Unprocessable, "dtype int64, expected a float type"),
        (_npy(np.array([{"a": 1}], dtype=object)), Unprocessable, "dtype object"),
        (_npy(np.zeros((2, 4), np.float32))[:-4], BadRequest, "holds 28 bytes"),
        (_npy(np.zeros((2, 4), np.float32)) + b"tail", BadRequest, "holds 36 bytes"),
    ],
)
def test_bodies_that_are_not_float_arrays_are_refused(body: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        read_npy(body, "z")


def test_decode_npy_in_and_out_equals_the_json_arrays(client: TestClient) -> None:
    z = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    as_json = client.post("/decode", json={"z": z.tolist(), "format": "array"}).json()
    binary = client.post(
        "/decode?model=digits&version=2",
        content=npy_bytes(z),
        headers={"content-type": NPY, "accept": NPY},
    )
    assert binary.status_code == 200 and binary.headers["content-type"] == NPY
    assert binary.headers["x-model"] == "digits" and binary.headers["x-version"] == "2"
    x_mean = np.load(io.BytesIO(binary.content))
    assert x_mean.dtype == np.float32 and x_mean.shape == (3, 1, 8, 8)
    default = client.post("/decode", content=npy_bytes(z), headers={"content-type": NPY, "accept": NPY})
    np.testing.assert_allclose(np.load(io.BytesIO(default.content)), np.array(as_json["arrays"]), atol=1e-6)
    assert default.headers["x-version"] == "10"  # the highest version unless the query names one
    as_png = client.post("/decode", content=npy_bytes(z), headers={"content-type": NPY})
    assert len(as_png.json()["images"]) == 3


def test_sample_answers_npy_with_the_seed_in_a_header(client: TestClient) -> None:
    response = client.post("/sample", json={"n": 5, "seed": 3}, headers={"accept": NPY})
    assert response.headers["x-seed"] == "3"
    as_json = client.post("/sample", json={"n": 5, "seed": 3, "format": "array"}).json()
    np.testing.assert_allclose(np.load(io.BytesIO(response.content)), np.array(as_json["arrays"]), atol=1e-6)


@pytest.mark.parametrize(
    ("query", "z", "status", "message"),
    [
        ("", np.zeros((2, 3), np.float32), 422, "z: shape [2, 3], expected [N, 4]"),
        ("", np.zeros(4, np.float32), 422, "z: shape [4], expected [N, 4]"),
        ("", np.zeros((9, 4), np.float32), 422, "z: 9 latents, more than the limit of 8"),
        ("", np.full((1, 4), np.nan, np.float32), 422, "finite float32"),
        ("", np.full((1, 4), 1e300), 422, "finite float32"),
        ("?model=../etc", np.zeros((1, 4), np.float32), 422, "model: '../etc' must match"),
        ("?model=nope", np.zeros((1, 4), np.float32), 404, "no model named 'nope'"),
    ],
)
def test_bad_npy_latents(client: TestClient, query: str, z: np.ndarray, status: int, message: str) -> None:
    response = client.post(f"/decode{query}", content=_npy(z), headers={"content-type": NPY})
    assert response.status_code == status and message in response.json()["detail"]
