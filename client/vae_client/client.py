"""The client: ``AsyncClient`` for asyncio code, ``Client`` for everything else (same methods)."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx2 as httpx
import numpy as np

from vae_client.errors import ServiceError, Unavailable
from vae_client.inputs import ImageInput, image_bytes
from vae_client.retry import RETRY_STATUSES, Retry

NPY = "application/x-npy"
MULTIPART_OVERHEAD = 512  # bytes of part headers per file, with room to spare
DEFAULT_K = 100  # the server's k of /score when a request names none
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """What one request may hold, as the server publishes them in GET /models."""

    max_images: int
    max_n: int
    max_steps: int
    max_body_bytes: int
    max_image_bytes: int
    max_score_k: int = 5000
    max_score_rows: int = 131072

    @classmethod
    def of(cls, published: dict[str, Any]) -> Limits:
        """From GET /models' ``limits``, keeping the fields this client knows."""
        return cls(**{k: v for k, v in published.items() if k in cls.__dataclass_fields__})


@dataclass
class Scored:
    """Per image scored, in input order; with ``skip_bad``, the refused ones are in ``failed``."""

    k: int = 0
    log_px: np.ndarray = field(default_factory=lambda: np.zeros(0))  # nats
    elbo: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bits_per_dim: np.ndarray = field(default_factory=lambda: np.zeros(0))
    percentile: np.ndarray = field(default_factory=lambda: np.zeros(0))  # NaN without a reference
    indices: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


@dataclass
class Encoded:
    """mu and sigma of q(z|x) per image encoded, in input order; with ``skip_bad``, the images the
    server refused are left out and listed in ``failed`` (input index -> the server's reason)."""

    mu: np.ndarray  # [N, D]
    sigma: np.ndarray  # [N, D]
    z: np.ndarray | None = None  # one z ~ q(z|x) per image, when asked for
    indices: list[int] = field(default_factory=list)  # the input index of each row
    failed: dict[int, str] = field(default_factory=dict)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float32))
    return buf.getvalue()


def _chunks(sizes: Sequence[int], max_items: int, max_bytes: int) -> list[range]:
    """Consecutive runs of items, each at most ``max_items`` long and ``max_bytes`` in all."""
    runs, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_items or total + size > max_bytes):
            runs.append(range(start, i))
            start, total = i, 0
        total += size
    if start < len(sizes):
        runs.append(range(start, len(sizes)))
    return runs


def _bad_file(field: str | None) -> int | None:
    """The index i of a refusal about one upload (its ``field`` is ``files[i]``), else None."""
    match = re.fullmatch(r"files\[(\d+)\]", field or "")
    return int(match.group(1)) if match else None


class AsyncClient:
    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        model: str | None = None,
        version: str | None = None,
        concurrency: int = 4,
        retry: Retry | None = None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=url,
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )
        self._model = {k: v for k, v in (("model", model), ("version", version)) if v is not None}
        self._concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None  # made in the loop that uses it
        self._retry = retry or Retry()
        self._limits: Limits | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def limits(self) -> Limits:
        if self._limits is None:
            self._limits = Limits.of((await self._request("GET", "/models")).json()["limits"])
        return self._limits

    async def models(self) -> dict[str, Any]:
        return (await self._request("GET", "/models")).json()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, retried on 429/5xx-busy and connection errors; 4xx raise ServiceError."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._concurrency)
        problem = ""
        request = self._http.build_request(method, path, **kwargs)
        # the body as one bytes object: httpx streams a multipart body part by part, one socket
        # write (and its anyio round) each, 8 an image; encode of 3,000 PNGs spent 44% of its
        # time there (cProfile)
        request.read()
        for attempt in range(self._retry.attempts):
            async with self._slots:
                try:
                    response = await self._http.send(request)
                except httpx.TransportError as e:
                    problem, wait = f"{type(e).__name__}: {e}", self._retry.delay(attempt)
                else:
                    if response.status_code < 400:
                        return response
                    detail, field = _refusal(response)
                    if response.status_code not in RETRY_STATUSES:
                        raise ServiceError(response.status_code, detail, field)
                    problem = f"{response.status_code}: {detail}"
                    wait = self._retry.delay(attempt, response.headers.get("retry-after"))
            if attempt + 1 < self._retry.attempts:
                await asyncio.sleep(wait)  # outside the slot: others may go meanwhile
        raise Unavailable(f"{method} {path}: {self._retry.attempts} tries, the last: {problem}")

    async def _upload(
        self,
        path: str,
        uploads: list[bytes],
        per_piece: int,
        form: Callable[[int], dict[str, str]],
        skip_bad: bool,
        on_progress: Callable[[int], None] | None,
    ) -> list[tuple[list[int], dict[str, Any] | None, dict[int, str]]]:
        """Uploads sent in pieces that fit the server's limits, concurrently; for each piece the input
        indices answered, the answer, and the refused images (with ``skip_bad``: left out, the piece
        sent again without them; the server names the bad one in its error's ``field``)."""
        limits = await self.limits()
        budget = limits.max_body_bytes - 4096
        runs = _chunks([len(u) + MULTIPART_OVERHEAD for u in uploads], per_piece, budget)

        async def piece(k: int, run: range) -> tuple[list[int], dict[str, Any] | None, dict[int, str]]:
            indices, failed = list(run), {}
            while indices:
                files = [("files", (f"{i}", uploads[i], "application/octet-stream")) for i in indices]
                try:
                    body = (await self._request("POST", path, files=files, data=form(k))).json()
                except ServiceError as e:
                    bad = _bad_file(e.field)
                    if not skip_bad or bad is None or bad >= len(indices):
                        raise
                    failed[indices.pop(bad)] = e.detail.removeprefix(f"{e.field}: ")
                    continue
                if on_progress is not None:
                    on_progress(len(run))
                return indices, body, failed
            if on_progress is not None:
                on_progress(len(run))
            return [], None, failed

        return await asyncio.gather(*(piece(k, run) for k, run in enumerate(runs)))

    async def encode(
        self,
        images: Sequence[ImageInput],
        *,
        sample: bool = False,
        seed: int | None = None,
        skip_bad: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> Encoded:
        """mu and sigma (and with ``sample``, one z each) of every image, in input order.

        With ``skip_bad`` an image the server cannot read is left out and reported in
        ``Encoded.failed`` instead of failing the call. ``on_progress(k)`` is called as each piece of
        k images is done. Pieces get seeds ``seed``, ``seed + 1``, ... when a seed is given."""

        def form(k: int) -> dict[str, str]:
            fields = {"sample": str(sample).lower(), **self._model}
            return fields | ({"seed": str(seed + k)} if seed is not None else {})

        uploads = [image_bytes(item) for item in images]
        limits = await self.limits()
        results = await self._upload("/encode", uploads, limits.max_images, form, skip_bad, on_progress)
        encoded = Encoded(mu=np.zeros((0, 0), np.float32), sigma=np.zeros((0, 0), np.float32))
        mus, sigmas, zs = [], [], []
        for indices, body, failed in results:
            encoded.failed |= failed
            if body is not None:
                encoded.indices += indices
                mus.append(np.asarray(body["mu"], np.float32))
                sigmas.append(np.asarray(body["sigma"], np.float32))
                zs.append(np.asarray(body.get("z") or [], np.float32))
        if mus:
            encoded.mu, encoded.sigma = np.concatenate(mus), np.concatenate(sigmas)
            encoded.z = np.concatenate(zs) if sample else None
        return encoded

    async def score(
        self,
        images: Sequence[ImageInput],
        *,
        k: int | None = None,
        seed: int | None = None,
        skip_bad: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> Scored:
        """How likely each image is under the model: log p(x) (nats, K importance samples), the
        ELBO, bits per dimension and the percentile among the model's test images, in input order.
        ``k`` is the server's default when not given; pieces hold at most max_score_rows / k images
        and get seeds ``seed``, ``seed + 1``, ... when a seed is given."""

        def form(piece: int) -> dict[str, str]:
            fields = dict(self._model) | ({"k": str(k)} if k is not None else {})
            return fields | ({"seed": str(seed + piece)} if seed is not None else {})

        uploads = [image_bytes(item) for item in images]
        limits = await self.limits()
        per_piece = max(1, min(limits.max_images, limits.max_score_rows // (k or DEFAULT_K)))
        results = await self._upload("/score", uploads, per_piece, form, skip_bad, on_progress)
        scored = Scored()
        for indices, body, failed in results:
            scored.failed |= failed
            if body is None:
                continue
            scored.indices += indices
            scored.k = body["k"]
            for key in ("log_px", "elbo", "bits_per_dim"):
                setattr(
                    scored, key, np.concatenate([getattr(scored, key), np.asarray(body[key], np.float64)])
                )
            percentile = body.get("percentile") or [np.nan] * len(indices)
            scored.percentile = np.concatenate([scored.percentile, np.asarray(percentile, np.float64)])
        return scored

    async def decode(self, z: np.ndarray) -> np.ndarray:
        """Latents [N, D] -> x_mean [N, C, H, W], in pieces of the server's max_images."""
        z = np.asarray(z, dtype=np.float32)
        limits = await self.limits()

        async def piece(rows: np.ndarray) -> np.ndarray:
            response = await self._request(
                "POST",
                "/decode",
                params=self._model,
                content=_npy(rows),
                headers={"content-type": NPY, "accept": NPY},
            )
            return np.load(io.BytesIO(response.content))

        parts = [z[i : i + limits.max_images] for i in range(0, len(z), limits.max_images)]
        return np.concatenate(await asyncio.gather(*(piece(p) for p in parts)))

    async def sample(self, n: int, *, seed: int | None = None, temperature: float = 1.0) -> np.ndarray:
        """n images from the prior: x_mean [n, C, H, W]. Pieces of the server's max_n get seeds
        ``seed``, ``seed + 1``, ... (a random seed when none is given)."""
        limits = await self.limits()
        first = seed if seed is not None else secrets.randbits(62)

        async def piece(k: int, count: int) -> np.ndarray:
            body = {"n": count, "seed": first + k, "temperature": temperature, **self._model}
            response = await self._request("POST", "/sample", json=body, headers={"accept": NPY})
            return np.load(io.BytesIO(response.content))

        counts = [min(limits.max_n, n - i) for i in range(0, n, limits.max_n)]
        return np.concatenate(await asyncio.gather(*(piece(k, c) for k, c in enumerate(counts))))

    async def interpolate(
        self,
        start: ImageInput | np.ndarray,
        end: ImageInput | np.ndarray,
        *,
        steps: int = 8,
        method: str = "slerp",
    ) -> np.ndarray:
        """Images along the path from ``start`` to ``end``, each a latent [D] or an image:
        x_mean [steps, C, H, W], both ends included."""
        body = {
            "start": _endpoint(start),
            "end": _endpoint(end),
            "steps": steps,
            "method": method,
            **self._model,
        }
        response = await self._request("POST", "/interpolate", json=body, headers={"accept": NPY})
        return np.load(io.BytesIO(response.content))


def _endpoint(value: ImageInput | np.ndarray) -> dict[str, Any]:
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return {"z": value.astype(float).tolist()}
    return {"image": base64.b64encode(image_bytes(value)).decode()}


def _refusal(response: httpx.Response) -> tuple[str, str | None]:
    """What the service said was wrong, and which field of the request (when it said)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300], None
    if not isinstance(body, dict):
        return str(body)[:300], None
    value = body.get("detail", body.get("error", body))
    field = body.get("field")
    return (value if isinstance(value, str) else str(value)[:300]), (
        field if isinstance(field, str) else None
    )


class Client:
    """The same methods as AsyncClient, for code without an event loop of its own."""

    def __init__(self, url: str = "http://127.0.0.1:8000", **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._async = AsyncClient(url, **options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._loop.run_until_complete(self._async.aclose())
        self._loop.close()

    def _run(self, call: Awaitable[T]) -> T:
        return self._loop.run_until_complete(call)

    def limits(self) -> Limits:
        return self._run(self._async.limits())

    def models(self) -> dict[str, Any]:
        return self._run(self._async.models())

    def encode(self, images: Sequence[ImageInput], **options: Any) -> Encoded:
        return self._run(self._async.encode(images, **options))

    def score(self, images: Sequence[ImageInput], **options: Any) -> Scored:
        return self._run(self._async.score(images, **options))

    def decode(self, z: np.ndarray) -> np.ndarray:
        return self._run(self._async.decode(z))

    def sample(self, n: int, **options: Any) -> np.ndarray:
        return self._run(self._async.sample(n, **options))

    def interpolate(
        self, start: ImageInput | np.ndarray, end: ImageInput | np.ndarray, **options: Any
    ) -> np.ndarray:
        return self._run(self._async.interpolate(start, end, **options))
