"""The HTTP API in-process: behaviour of each endpoint, and every bad input gets a clear 4xx."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from harness.files import encode_image
from service.api.npy import NPY
from service.main import create_app
from tests.service.conftest import settings_for


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _png(img: np.ndarray) -> bytes:
    return encode_image(img, "PNG")


def _image(b64png: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64png))))


def _metric(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


# --- behaviour ----------------------------------------------------------------------------------


def test_encode_multipart_and_json_agree_and_keep_order(client: TestClient, digit_images: np.ndarray) -> None:
    pngs = [_png(img) for img in digit_images[:3]]
    multi = client.post(
        "/encode", files=[("files", (f"{i}.png", d, "image/png")) for i, d in enumerate(pngs)]
    )
    assert multi.status_code == 200, multi.text
    body = multi.json()
    assert (body["model"], body["version"], body["latent_dim"]) == ("digits", "10", 4)
    assert np.array(body["mu"]).shape == (3, 4) and (np.array(body["sigma"]) > 0).all()
    as_json = client.post("/encode", json={"images": [_b64(d) for d in pngs]}).json()
    assert np.allclose(as_json["mu"], body["mu"]) and np.allclose(as_json["sigma"], body["sigma"])
    one = client.post("/encode", json={"images": [_b64(pngs[2])]}).json()
    assert np.allclose(one["mu"][0], body["mu"][2], atol=1e-6)  # batching does not mix images


def test_encode_any_format_and_mode(client: TestClient, digit_images: np.ndarray) -> None:
    files = [
        ("files", ("a.jpg", encode_image(digit_images[0], "JPEG"), "image/jpeg")),
        ("files", ("b.webp", encode_image(digit_images[1], "WEBP", mode="RGB"), "image/webp")),
        ("files", ("c.bmp", encode_image(digit_images[2], "BMP"), "image/bmp")),
    ]
    response = client.post("/encode", files=files, data={"model": "digits", "version": "2"})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == "2" and len(response.json()["mu"]) == 3


def test_encode_can_sample_z_reproducibly(client: TestClient, digit_images: np.ndarray) -> None:
    body = {"images": [_b64(_png(digit_images[0]))], "sample": True, "seed": 3}
    a, b = client.post("/encode", json=body).json(), client.post("/encode", json=body).json()
    assert a["z"] == b["z"] and a["seed"] == 3
    mu, sigma, z = (np.array(a[k]) for k in ("mu", "sigma", "z"))
    assert np.all(np.abs(z - mu) < 6 * sigma)


def test_sample_with_a_seed_gives_identical_bytes(client: TestClient) -> None:
    a = client.post("/sample", json={"n": 5, "seed": 42})
    b = client.post("/sample", json={"n": 5, "seed": 42})
    assert a.status_code == 200 and a.content == b.content
    assert a.json()["seed"] == 42 and np.array(a.json()["z"]).shape == (5, 4)
    other = client.post("/sample", json={"n": 5, "seed": 43})
    assert other.json()["images"] != a.json()["images"]
    unseeded = client.post("/sample", json={"n": 1}).json()
    again = client.post("/sample", json={"n": 1, "seed": unseeded["seed"]}).json()
    assert again["images"] == unseeded["images"]  # the returned seed reproduces an unseeded sample


def test_sample_temperature_scales_z(client: TestClient) -> None:
    z1 = np.array(client.post("/sample", json={"n": 3, "seed": 1}).json()["z"])
    z_half = np.array(client.post("/sample", json={"n": 3, "seed": 1, "temperature": 0.5}).json()["z"])
    assert np.allclose(z_half, 0.5 * z1, atol=1e-6)


def test_decode_png_array_and_single_png(client: TestClient) -> None:
    z = [[0.0, 0.5, -0.5, 1.0], [1.0, 0.0, 0.0, 0.0]]
    png = client.post("/decode", json={"z": z}).json()
    arrays = client.post("/decode", json={"z": z, "format": "array"}).json()
    x = np.array(arrays["arrays"])
    assert x.shape == (2, 1, 8, 8) and x.min() >= 0 and x.max() <= 1
    assert np.abs(_image(png["images"][0]) - np.round(x[0, 0] * 255)).max() <= 1
    grid = client.post("/decode", json={"z": z}, headers={"accept": "image/png"})
    assert grid.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(grid.content)).size == (2 * 8 + 3 * 2, 8 + 2 * 2)
    single = client.post("/decode", json={"z": z[:1]}, headers={"accept": "image/png"})
    assert Image.open(io.BytesIO(single.content)).size == (8, 8)


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolation_endpoints_equal_the_decodes_of_its_endpoints(client: TestClient, method: str) -> None:
    start, end = [1.0, -2.0, 0.5, 0.0], [-1.0, 0.5, 2.0, 1.0]
    body = client.post(
        "/interpolate",
        json={"start": {"z": start}, "end": {"z": end}, "steps": 6, "method": method, "format": "array"},
    ).json()
    path = np.array(body["z"])
    assert path.shape == (6, 4) and np.allclose(path[0], start) and np.allclose(path[-1], end)
    ends = client.post("/decode", json={"z": [start, end], "format": "array"}).json()["arrays"]
    assert np.allclose(body["arrays"][0], ends[0], atol=1e-6) and np.allclose(
        body["arrays"][-1], ends[1], atol=1e-6
    )

    if method == "slerp":  # between latents of equal norm: constant angular steps, constant norm
        a, b = [2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]
        body = client.post(
            "/interpolate", json={"start": {"z": a}, "end": {"z": b}, "steps": 5, "method": "slerp"}
        )
        path = np.array(body.json()["z"])
        assert np.allclose(np.linalg.norm(path, axis=1), 2.0, atol=1e-5)
        unit = path / 2.0
        angles = np.arccos(np.clip(np.sum(unit[1:] * unit[:-1], axis=1), -1, 1))
        assert np.allclose(angles, np.pi / 8, atol=1e-4)


def test_interpolation_between_images_starts_at_their_encodings(
    client: TestClient, digit_images: np.ndarray
) -> None:
    a, b = _b64(_png(digit_images[0])), _b64(_png(digit_images[1]))
    body = client.post("/interpolate", json={"start": {"image": a}, "end": {"image": b}, "steps": 4}).json()
    mu = client.post("/encode", json={"images": [a, b]}).json()["mu"]
    assert np.allclose(body["z"][0], mu[0], atol=1e-5) and np.allclose(body["z"][-1], mu[1], atol=1e-5)
    assert len(body["images"]) == 4


def test_models_lists_manifests_and_the_default(client: TestClient) -> None:
    body = client.get("/models").json()
    assert body["default_model"] == "digits" and body["failed"] == []
    entries = {(m["model"], m["version"]): m for m in body["models"]}
    assert set(entries) == {("digits", "2"), ("digits", "10")}
    assert entries[("digits", "10")]["default"] and not entries[("digits", "2")]["default"]
    assert entries[("digits", "2")]["manifest"]["files"]["encoder"]["sha256"]


def test_health_readiness_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["models"] == ["digits/10", "digits/2"]
    spec = client.get("/openapi.json").json()
    for path in ("/encode", "/decode", "/sample", "/interpolate"):
        operation = spec["paths"][path]["post"]
        content = operation["requestBody"]["content"]
        assert any(
            "example" in c or "examples" in c.get("schema", {}) or "$ref" in c.get("schema", {})
            for c in content.values()
        )
    assert set(spec["paths"]["/encode"]["post"]["requestBody"]["content"]) == {
        "multipart/form-data",
        "application/json",
    }
    assert set(spec["paths"]["/decode"]["post"]["requestBody"]["content"]) == {"application/json", NPY}
    bodies = {
        path: spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        for path in ("/encode", "/decode", "/sample", "/interpolate")
    }
    assert [b["title"] for b in bodies.values()] == [
        "EncodeJSON",
        "DecodeRequest",
        "SampleRequest",
        "InterpolateRequest",
    ]
    assert "$ref" not in str(bodies)  # self-contained: every definition written out in place
    ends = bodies["/interpolate"]["properties"]["start"]["anyOf"]
    assert [e["title"] for e in ends] == ["LatentEnd", "ImageEnd"]
    assert client.get("/docs").status_code == 200


def test_request_ids_are_echoed_or_made(client: TestClient) -> None:
    assert client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"}).headers["x-request-id"]
    assert len(made) == 32 and made.isalnum()


def test_metrics_move_after_requests(client: TestClient, digit_images: np.ndarray) -> None:
    labels = {"endpoint": "/sample", "model": "digits", "version": "10", "status": "200"}
    before = _metric(client, "vae_requests_total", **labels)
    images_before = _metric(client, "vae_images_total", endpoint="/sample")
    decoder_before = _metric(client, "vae_inference_duration_seconds_count", network="decoder", version="10")
    client.post("/sample", json={"n": 3, "seed": 0})
    client.post("/sample", json={"n": 2, "seed": 0})
    assert _metric(client, "vae_requests_total", **labels) == before + 2
    assert _metric(client, "vae_images_total", endpoint="/sample") == images_before + 5
    assert (
        _metric(client, "vae_inference_duration_seconds_count", network="decoder", version="10")
        == decoder_before + 2
    )
    assert _metric(client, "vae_request_duration_seconds_count", endpoint="/sample") >= 2
    assert _metric(client, "vae_model_info", model="digits", version="10", latent_dim="4") == 1
    failed = _metric(client, "vae_requests_total", endpoint="/decode", status="422")
    client.post("/decode", json={"z": [[1.0]]})
    assert _metric(client, "vae_requests_total", endpoint="/decode", status="422") == failed + 1
    assert _metric(client, "vae_requests_total", endpoint="/metrics") == 0  # operations are not metered


# --- bad input: a 4xx naming the field and the limit, never a 5xx --------------------------------


def _detail(response) -> str:  # type: ignore[no-untyped-def]
    return str(response.json()["detail"])


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/decode", {"z": [[1.0, 2.0]]}, 422, "z[0]: has 2 numbers, the model's latent_dim is 4"),
        ("/decode", {"z": [[0.0] * 4] * 9}, 422, "9 latents, more than the limit of 8"),
        ("/decode", {"z": []}, 422, "at least 1 item"),
        ("/decode", {"z": [[1e308, 0, 0, 0]]}, 422, "finite float32"),
        ("/decode", {"z": [[0.0] * 4], "format": "gif"}, 422, "'png' or 'array'"),
        ("/decode", {"z": [[0.0] * 4], "model": "../../etc"}, 422, "model"),
        ("/decode", {"z": [[0.0] * 4], "model": "cats"}, 404, "no model named 'cats'; available: digits"),
        ("/decode", {"z": [[0.0] * 4], "version": "7"}, 404, "no version '7'; available: 2, 10"),
        ("/decode", {"z": [[0.0] * 4], "unknown": 1}, 422, "Extra inputs are not permitted"),
        ("/sample", {"n": 0}, 422, "greater than or equal to 1"),
        ("/sample", {"n": -5}, 422, "greater than or equal to 1"),
        ("/sample", {"n": 33}, 422, "n: 33 is more than the limit of 32 (VAE_MAX_N)"),
        ("/sample", {"n": 10**30}, 422, "n: "),
        ("/sample", {"n": 1, "temperature": 0}, 422, "greater than 0"),
        ("/sample", {"n": 1, "temperature": 11}, 422, "temperature: 11.0 is more than the limit of 10.0"),
        ("/sample", {"n": 1, "seed": -1}, 422, "greater than or equal to 0"),
        (
            "/interpolate",
            {"start": {"z": [0.0] * 4}, "end": {"z": [1.0] * 4}, "steps": 17},
            422,
            "steps: 17 is more than the limit of 16",
        ),
        (
            "/interpolate",
            {"start": {"z": [0.0] * 4}, "end": {"z": [1.0] * 4}, "steps": 1},
            422,
            "greater than or equal to 2",
        ),
        (
            "/interpolate",
            {"start": {"z": [0.0] * 4}, "end": {"z": [1.0] * 4}, "method": "cubic"},
            422,
            "'linear' or 'slerp'",
        ),
        (
            "/interpolate",
            {"start": {"z": [0.0] * 3}, "end": {"z": [1.0] * 4}},
            422,
            "start.z[0]: has 3 numbers",
        ),
        ("/interpolate", {"start": {}, "end": {"z": [1.0] * 4}}, 422, "Field required"),
        (
            "/interpolate",
            {"start": {"image": "%%%"}, "end": {"z": [1.0] * 4}},
            400,
            "start.image: not valid base64",
        ),
        ("/encode", {"images": []}, 422, "at least 1 item"),
        ("/encode", {"images": ["@@@@"]}, 400, "images[0]: not valid base64"),
        (
            "/encode",
            {"images": [_b64(b"hello, not an image")]},
            400,
            "images[0]: not a recognised image format",
        ),
    ],
)
def test_bad_json_input(client: TestClient, path: str, body: dict, status: int, message: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert message in _detail(response)


@pytest.mark.parametrize(
    "raw", [b'{"z": [[NaN, 0, 0, 0]]}', b'{"z": [[Infinity, 0, 0, 0]]}', b'{"z": [[-Infinity, 0, 0, 0]]}']
)
def test_non_finite_numbers_are_refused(client: TestClient, raw: bytes) -> None:
    response = client.post("/decode", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "finite" in _detail(response)


@pytest.mark.parametrize("raw", [b'{"z": [[0, 0', b"not json at all", b"", b"[1, 2]"])
def test_malformed_json_is_a_4xx(client: TestClient, raw: bytes) -> None:
    for path in ("/decode", "/encode"):
        response = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, raw, response.text)


def test_bad_uploads(client: TestClient, digit_images: np.ndarray) -> None:
    png = _png(digit_images[0])
    cases = [
        (
            [("files", ("x.png", b"plain text, not a picture", "image/png"))],
            400,
            "files[0]: not a recognised image",
        ),
        ([("files", ("x.png", png[: len(png) // 2], "image/png"))], 400, "files[0]: corrupt or truncated"),
        (
            [("files", ("ok.png", png, "image/png")), ("files", ("x.gif", b"GIF89a", "image/gif"))],
            400,
            "files[1]",
        ),
        ([("files", (f"{i}.png", png, "image/png")) for i in range(9)], 400, "Too many files"),
        ([("other", ("x.png", png, "image/png"))], 422, "files: at least one image file is required"),
    ]
    for files, status, message in cases:
        response = client.post("/encode", files=files)
        assert response.status_code == status, (message, response.text)
        assert message in _detail(response)


def test_decompression_bombs_are_refused_before_decoding(client: TestClient) -> None:
    bomb = io.BytesIO()
    Image.new("L", (2000, 2000)).save(bomb, format="PNG")  # 4 megapixels in a few kB
    assert len(bomb.getvalue()) < 20_000
    response = client.post("/encode", files=[("files", ("bomb.png", bomb.getvalue(), "image/png"))])
    assert response.status_code == 400 and "2000x2000 pixels, more than the limit of 1000000" in _detail(
        response
    )


def test_bodies_over_the_limit_are_refused(client: TestClient) -> None:
    big = b"x" * 400_000
    response = client.post("/encode", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "more than the limit of 300000 bytes" in _detail(response)
    one_big = client.post("/encode", files=[("files", ("big.png", b"\x89PNG" + b"0" * 150_000, "image/png"))])
    assert one_big.status_code == 413
    assert _detail(one_big) == "files[0]: 150004 bytes, more than the limit of 100000 (VAE_MAX_IMAGE_BYTES)"
    end = {"image": _b64(b"\x89PNG" + b"0" * 150_000)}
    path = client.post("/interpolate", json={"start": end, "end": {"z": [0.0] * 4}})
    assert path.status_code == 413 and "start.image: 150004 bytes" in _detail(path)


def test_unsupported_content_types(client: TestClient) -> None:
    response = client.post("/encode", content=b"abc", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "multipart/form-data or application/json" in _detail(response)


def test_the_process_stays_healthy_after_bad_input(client: TestClient) -> None:
    client.post("/decode", content=b"{{{{", headers={"content-type": "application/json"})
    assert client.post("/sample", json={"n": 1, "seed": 0}).status_code == 200


def test_a_full_queue_answers_503_with_retry_after(model_repository: Path) -> None:
    app = create_app(settings_for(model_repository, max_queue=1, max_inline_rows=0))

    async def burst() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                body = {"z": [[0.0] * 4] * 8}
                return await asyncio.gather(*(client.post("/decode", json=body) for _ in range(16)))

    responses = asyncio.run(burst())
    refused = [r for r in responses if r.status_code == 503]
    assert refused and all(r.status_code in (200, 503) for r in responses)
    assert all(r.headers["retry-after"] == "1" and "VAE_MAX_QUEUE" in _detail(r) for r in refused)
