"""An answer's head and body leave in one write; answers with no body write (HEAD, 100 Continue)
are not held back. The write pattern in isolation, then a real server over raw sockets."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx2 as httpx

from harness.ports import free_port
from harness.processes import service
from service.protocol import OneWrite

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    """Stands in for the socket transport: what was written, in which writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def writelines(self, parts: tuple[bytes, ...]) -> None:
        self.writes.append(b"".join(parts))  # one write, as uvloop's writev makes it

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_a_head_waits_for_its_body_and_both_leave_in_one_write() -> None:
    sink = Recorder()
    transport = OneWrite(sink, lambda: True)  # type: ignore[arg-type]
    transport.write(HEAD)
    assert sink.writes == []
    transport.write(b"{}")
    assert sink.writes == [HEAD + b"{}"]
    whole = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}"  # an answer written at once
    transport.write(whole)
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # nothing follows it in the same answer
    assert sink.writes[1:] == [whole, b"HTTP/1.1 100 Continue\r\n\r\n"]
    assert transport.is_closing() is False  # everything else is the transport's own


def test_a_held_head_is_written_before_the_transport_closes_and_heads_for_head_pass() -> None:
    sink = Recorder()
    OneWrite(sink, lambda: True).write(HEAD)  # type: ignore[arg-type]
    transport = OneWrite(sink, lambda: True)  # type: ignore[arg-type]
    transport.write(HEAD)
    transport.close()
    assert sink.writes == [HEAD] and sink.closed
    headless = Recorder()
    OneWrite(headless, lambda: False).write(HEAD)  # type: ignore[arg-type]  # an answer to HEAD
    assert headless.writes == [HEAD]


def _answer(sock: socket.socket, until: bytes, seconds: float = 5) -> bytes:
    data, deadline = b"", time.monotonic() + seconds
    sock.settimeout(seconds)
    while until not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_head_requests_100_continue_and_keep_alive_on_a_real_server(
    model_repository: Path, tmp_path: Path
) -> None:
    port = free_port()
    with service(model_repository, tmp_path, port, default_model="digits"):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"HEAD /static/ui/page.css HTTP/1.1\r\nHost: x\r\n\r\n")
            head = _answer(sock, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")  # at once, no body
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the same connection goes on
            assert _answer(sock, b"}").startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", port)) as sock:
            body = b'{"z": [[0, 0, 0, 0]]}'
            sock.sendall(
                b"POST /decode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + b"Expect: 100-continue\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
            )
            assert _answer(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100")  # asked to go on, not held
            sock.sendall(body)
            assert b"HTTP/1.1 200" in _answer(sock, b'"images"')
        assert httpx.get(f"http://127.0.0.1:{port}/models").status_code == 200
