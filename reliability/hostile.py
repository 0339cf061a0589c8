"""Hostile and broken inputs, each sent to a real server on a fresh connection, each followed by a
valid request that must still be answered correctly, with the server's memory measured throughout.

``python -m reliability.hostile`` runs them against the shipped model and writes
reliability/hostile.md (the table in the README); tests/reliability/test_hostile.py runs the same
cases in the suite.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from harness.probe import Answer, exchange, multipart, request, usage

ROOT = Path(__file__).resolve().parents[1]
MiB = 1 << 20
BOUNDARY = "hostileboundary"
SLOW_TIMEOUT = 2  # VAE_REQUEST_TIMEOUT_SECONDS of the server these cases run against


@dataclass(frozen=True)
class Case:
    name: str
    status: int  # the answer expected
    says: str  # a part of the answer's detail
    chunks: Callable[[int], list[bytes]]  # latent_dim -> what to send
    pause: float = 0  # seconds between chunks


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG_CHANNELS = {0: 1, 6: 4}  # colour type -> bytes a pixel: grey, RGBA


def png_declaring(width: int, height: int, idat: bytes, colour: int = 0) -> bytes:
    """A PNG whose header declares width x height, with ``idat`` as its compressed pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def blank_png(width: int, height: int, colour: int = 0, ink: bool = False) -> bytes:
    """width x height zero pixels, deflated: a few bytes a row, however many pixels they decode to;
    with ``ink``, a bright (and opaque) band across the middle fifth, so that there is something to see."""
    compressor = zlib.compressobj(9)
    row = bytes(width * PNG_CHANNELS[colour] + 1)  # filter byte + pixels
    inked = b"\x00" + b"\xff" * (width * PNG_CHANNELS[colour])
    rows = (inked if ink and 2 * height // 5 <= y < 3 * height // 5 else row for y in range(height))
    data = b"".join(compressor.compress(r) for r in rows) + compressor.flush()
    return png_declaring(width, height, data, colour)


def decompression_bomb(side: int) -> bytes:
    """side x side black pixels, deflated: ~100 KB that would be 100 MB decoded at 10,000."""
    return blank_png(side, side)


def image(fmt: str, frames: int = 1, stroke: bool = False) -> bytes:
    """28x28 frames of one grey level each; with ``stroke``, a bright bar on black: a 1, roughly."""
    pictures = [Image.fromarray(np.full((28, 28), i % 256, np.uint8)) for i in range(frames)]
    if stroke:
        bar = np.zeros((28, 28), np.uint8)
        bar[5:23, 12:16] = 255
        pictures = [Image.fromarray(bar)]
    buf = io.BytesIO()
    pictures[0].save(buf, format=fmt, save_all=frames > 1, append_images=pictures[1:])
    return buf.getvalue()


def upload(files: list[bytes], boundary: str = BOUNDARY, declared: str = BOUNDARY) -> list[bytes]:
    body = multipart(files, boundary=boundary)
    return [request("POST", "/encode", body, f"multipart/form-data; boundary={declared}")]


def post_json(path: str, text: str) -> list[bytes]:
    return [request("POST", path, text.encode(), "application/json")]


def latents(value: str, dim: int, rows: int = 1) -> str:
    return '{"z": [' + ",".join(["[" + ",".join([value] * dim) + "]"] * rows) + "]}"


def npy_forged(shape: tuple[int, ...], descr: str = "<f4", data: bytes = bytes(64)) -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (63 - len(header) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def v2_infer(shape: list[int], data: str) -> list[bytes]:
    body = f'{{"inputs": [{{"name": "z", "shape": {shape}, "datatype": "FP32", "data": {data}}}]}}'
    return post_json("/v2/models/{model}-decoder/infer", body)


def _cases() -> Iterator[Case]:
    png = image("PNG")
    jpeg = image("JPEG")
    yield Case("truncated PNG", 400, "files[0]:", lambda d: upload([png[: len(png) // 2]]))
    yield Case("truncated JPEG", 400, "files[0]:", lambda d: upload([jpeg[: len(jpeg) // 2]]))
    corrupt = png[:33] + bytes(b ^ 0x5A for b in png[33:])
    yield Case("corrupt PNG (pixels scrambled)", 400, "files[0]:", lambda d: upload([corrupt]))
    bomb = decompression_bomb(10_000)
    yield Case(
        "decompression bomb: 98 KB PNG of 10,000 x 10,000",
        400,
        "10000x10000 pixels",
        lambda d: upload([bomb]),
    )
    giant = png_declaring(100_000, 100_000, zlib.compress(bytes(100)))
    yield Case(
        "PNG header declaring 100,000 x 100,000 (10 gigapixels)",
        400,
        "more than the limit",
        lambda d: upload([giant]),
    )
    gif = image("GIF", frames=2000)
    yield Case("animated GIF, 2,000 frames", 400, "animated images are not accepted", lambda d: upload([gif]))
    yield Case(
        "text sent as image/png",
        400,
        "not a recognised image format",
        lambda d: upload([b"hello, not a picture"]),
    )
    pdf = b"%PDF-1.4\n1 0 obj\n<</Type/Catalog>>\nendobj\ntrailer\n<</Root 1 0 R>>\n%%EOF\n"
    yield Case("PDF sent as image/png", 400, "not a recognised image format", lambda d: upload([pdf]))
    yield Case(
        "multipart with a boundary other than declared",
        400,
        "body: not valid multipart",
        lambda d: upload([png], boundary="other"),
    )
    yield Case(
        "multipart without a boundary",
        400,
        "body:",
        lambda d: [request("POST", "/encode", multipart([png], BOUNDARY), "multipart/form-data")],
    )
    yield Case("65 files (limit 64)", 400, "body:", lambda d: upload([png] * 65))
    yield Case("one image of 5 MiB (limit 4 MiB)", 413, "files", lambda d: upload([png + bytes(5 * MiB)]))
    yield Case(
        "Content-Length of 1 GiB, 10 bytes sent",
        413,
        "more than the limit",
        lambda d: [
            b"POST /encode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {1 << 30}\r\n\r\n".encode()
            + b'{"images":'
        ],
    )
    yield Case(
        "chunked body growing past 16 MiB",
        413,
        "more than the limit",
        lambda d: [
            b"POST /decode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            *[f"{MiB:x}\r\n".encode() + b" " * MiB + b"\r\n" for _ in range(17)],
            b"0\r\n\r\n",
        ],
    )
    yield Case(
        "JSON nested 100,000 deep",
        422,
        "recursion limit",
        lambda d: post_json("/sample", '{"n": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    )
    yield Case(
        "15 MiB of JSON latents (limit 64 rows)",
        413,
        "bytes of JSON, more than the limit",
        lambda d: post_json("/decode", latents("0.5", d, rows=15 * MiB // (5 * d))),
    )
    yield Case("NaN in a latent", 422, "finite number", lambda d: post_json("/decode", latents("NaN", d)))
    yield Case(
        "Infinity in a latent", 422, "finite number", lambda d: post_json("/decode", latents("Infinity", d))
    )
    yield Case(
        "1e308 in a latent (beyond float32)",
        422,
        "finite float32",
        lambda d: post_json("/decode", latents("1e308", d)),
    )
    yield Case(
        "latent one number short", 422, "latent_dim", lambda d: post_json("/decode", latents("0", d - 1))
    )
    yield Case("n = 0", 422, "greater than or equal to 1", lambda d: post_json("/sample", '{"n": 0}'))
    yield Case("n = -1", 422, "greater than or equal to 1", lambda d: post_json("/sample", '{"n": -1}'))
    yield Case(
        "n = 10^30",
        422,
        "more than the limit",
        lambda d: post_json("/sample", '{"n": ' + "1" + "0" * 30 + "}"),
    )
    yield Case('n = "5" (a string)', 422, "valid integer", lambda d: post_json("/sample", '{"n": "5"}'))
    yield Case(
        "steps = 0",
        422,
        "greater than or equal to 2",
        lambda d: post_json(
            "/interpolate", f'{{"steps": 0, "start": {{"z": {[0] * d}}}, "end": {{"z": {[1] * d}}}}}'
        ),
    )
    yield Case(
        "steps = 10^6",
        422,
        "more than the limit",
        lambda d: post_json(
            "/interpolate", f'{{"steps": 1000000, "start": {{"z": {[0] * d}}}, "end": {{"z": {[1] * d}}}}}'
        ),
    )
    yield Case(
        'model "../../etc/passwd"',
        422,
        "model",
        lambda d: post_json("/sample", '{"model": "../../etc/passwd"}'),
    )
    yield Case(
        'model "..%2F..%2Fetc" in a query',
        422,
        "model",
        lambda d: [request("POST", "/decode?model=..%2F..%2Fetc", npy_forged((1, d)), "application/x-npy")],
    )
    yield Case(
        "unknown model name", 404, "no model named", lambda d: post_json("/sample", '{"model": "nope"}')
    )
    yield Case(
        ".npy declaring 10^12 rows",
        400,
        "z:",
        lambda d: [request("POST", "/decode", npy_forged((10**12, d)), "application/x-npy")],
    )
    yield Case(
        "invalid UTF-8 in JSON",
        422,
        "json_invalid",
        lambda d: [request("POST", "/sample", b'{"n": "\xff\xfe"}', "application/json")],
    )
    yield Case(
        "a 1 MiB header",
        431,
        "more than the limit",
        lambda d: [request("GET", "/models", headers=f"X-Big: {'a' * MiB}\r\n")],
    )
    yield Case(
        "20,000 headers",
        431,
        "more than the limit",
        lambda d: [request("GET", "/models", headers="".join(f"X-{i}: a\r\n" for i in range(20_000)))],
    )
    yield Case(
        "a 100 KB URL", 431, "more than the limit", lambda d: [request("GET", "/models?" + "a" * 100_000)]
    )
    yield from _security_review_cases()
    body = multipart([png], BOUNDARY)
    slow = request("POST", "/encode", body, f"multipart/form-data; boundary={BOUNDARY}")
    yield Case(
        f"body trickling in for longer than the {SLOW_TIMEOUT} s request timeout",
        408,
        "not received within",
        lambda d: [slow[:-100], slow[-100:]],
        pause=SLOW_TIMEOUT + 1,
    )
    yield Case("unknown path", 404, "Not Found", lambda d: [request("GET", "/../../etc/passwd")])
    yield Case("GET on a POST endpoint", 405, "Method Not Allowed", lambda d: [request("GET", "/decode")])
    yield Case(
        "XML sent as the body",
        415,
        "content-type",
        lambda d: [request("POST", "/sample", b"<n>1</n>", "application/xml")],
    )


def _upload_one(data: bytes, latent_dim: int) -> list[bytes]:
    return upload([data])


def _security_review_cases() -> Iterator[Case]:
    """The findings of the security review (each failed before its fix)."""
    for width, height in ((160_000, 100), (20_000, 50), (16_384, 16)):
        # decoded and reduced in bounded memory, then seen for what it is: a thin band, no digit
        bomb = blank_png(width, height, ink=True)
        yield Case(
            f"{len(bomb):,}-byte PNG of {width:,} x {height} (a padded square would be {width:,}^2)",
            400,
            "no ink found",
            partial(_upload_one, bomb),
        )
    rgba = blank_png(4000, 4000, colour=6, ink=True)
    yield Case(
        f"4 RGBA PNGs of 4,000 x 4,000 ({4 * len(rgba) // 1024} KB, 64 megapixels)",
        200,
        '"mu"',
        lambda d: upload([rgba] * 4),
    )
    yield Case(
        "16 RGBA PNGs of 4,000 x 4,000 (256 megapixels in one request)",
        413,
        "pixels in all, more than the limit",
        lambda d: upload([rgba] * 16),
    )
    yield Case(
        "5.5 million empty strings as JSON images (16.5 MB)",
        422,
        "images: ",
        lambda d: post_json("/encode", '{"images": [' + ",".join(['""'] * 5_500_000) + "]}"),
    )
    yield Case(  # the body holds the 32 values the shape's product implies
        ".npy of shape (-1, -32)",
        422,
        "each of at least 1",
        lambda d: [request("POST", "/decode", npy_forged((-1, -32), data=bytes(128)), "application/x-npy")],
    )
    yield Case(
        ".npy of shape (0, 2**63)",
        422,
        "each of at least 1",
        lambda d: [request("POST", "/decode", npy_forged((0, 2**63), data=b""), "application/x-npy")],
    )
    inf16 = np.full((1, 32), np.inf, dtype="<f2").tobytes()
    yield Case(
        "float16 .npy holding +Inf",
        422,
        "finite",
        lambda d: [
            request("POST", "/decode", npy_forged((1, d), "<f2", inf16[: 2 * d]), "application/x-npy")
        ],
    )
    yield Case("V2 tensor of shape [0, 2**64]", 400, "each >= 1", lambda d: v2_infer([0, 2**64], "[]"))
    yield Case("V2 tensor of 0 rows", 400, "each >= 1", lambda d: v2_infer([0, d], "[]"))
    yield Case(
        "V2 JSON data of 16.6 MB",
        413,
        "bytes of JSON, more than",
        lambda d: v2_infer([1, d], "[" + ",".join(["0.123456789"] * 1_380_000) + "]"),
    )
    white = blank_png(600, 400)
    yield Case("a blank page (no ink)", 400, "no ink found", lambda d: upload([white]))
    digit = base64.b64encode(image("PNG", stroke=True)).decode()
    yield Case(
        "/score with k = 10^9",
        422,
        "VAE_MAX_SCORE_K",
        lambda d: post_json("/score", f'{{"images": ["{digit}"], "k": 1000000000}}'),
    )
    yield Case(
        "/score of 64 images at k = 5000 (320,000 decoder rows)",
        422,
        "decoder rows, more than the limit",
        lambda d: post_json("/score", '{"images": [' + ",".join([f'"{digit}"'] * 64) + '], "k": 5000}'),
    )
    yield Case(
        "a 70 KB header arriving in one read",
        431,
        "more than the limit",
        lambda d: [request("GET", "/models", headers=f"X-Big: {'a' * 70_000}\r\n")],
    )


CASES = list(_cases())


def valid_decode(port: int, latent_dim: int) -> Answer:
    return exchange(port, post_json("/decode", latents("0.25", latent_dim)))


@dataclass
class Outcome:
    case: Case
    answer: Answer
    next_ok: bool  # the valid request after it was answered correctly
    rss_mib: float  # resident memory after it
    peak_mib: float  # the most ever resident, up to it


def run_cases(port: int, pid: int, model: str, latent_dim: int, cases: list[Case] = CASES) -> list[Outcome]:
    outcomes = []
    for case in cases:
        chunks = [c.replace(b"/{model}-", f"/{model}-".encode(), 1) for c in case.chunks(latent_dim)]
        answer = exchange(port, chunks, pause=case.pause)
        after = valid_decode(port, latent_dim)
        ok = after.status == 200 and len(json.loads(after.body)["images"]) == 1
        use = usage(pid)
        outcomes.append(Outcome(case, answer, ok, use.rss / MiB, use.peak / MiB))
    return outcomes


def table(outcomes: list[Outcome], baseline_mib: float) -> str:
    lines = [
        "| input | answer | detail (shortened) | next request | peak RSS (MiB) |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        detail = o.answer.detail().replace("|", "\\|")[:90]
        lines.append(
            f"| {o.case.name} | {o.answer.status} | {detail} | {'200' if o.next_ok else 'FAILED'} "
            f"| {o.peak_mib:.0f} |"
        )
    lines.append(f"\nRSS before the first case (after warm-up): {baseline_mib:.0f} MiB.")
    return "\n".join(lines) + "\n"


def main() -> None:
    from harness.ports import free_port
    from harness.processes import service

    p = argparse.ArgumentParser(prog="python -m reliability.hostile", description=__doc__)
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--out", type=Path, default=ROOT / "reliability" / "hostile.md")
    p.add_argument("--logs", type=Path, default=ROOT / "runs" / "reliability")
    args = p.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with service(
        args.models, args.logs, port, request_timeout_seconds=str(SLOW_TIMEOUT), access_log="false"
    ) as process:
        served = json.loads(exchange(port, [request("GET", "/models")]).body)
        model = served["default_model"]
        latent_dim = next(m for m in served["models"] if m["default"])["manifest"]["latent_dim"]
        for _ in range(20):
            valid_decode(port, latent_dim)
        baseline = usage(process.pid).rss / MiB
        outcomes = run_cases(port, process.pid, model, latent_dim)
    text = table(outcomes, baseline)
    args.out.write_text(text)
    print(text)
    wrong = [o.case.name for o in outcomes if o.answer.status != o.case.status or not o.next_ok]
    if wrong:
        raise SystemExit(f"unexpected answers: {wrong}")


if __name__ == "__main__":
    main()
