"""What the reliability checks share: raw HTTP/1.1 over a socket (so a request can be as broken as a
hostile client makes it) and the memory and file descriptors of the server process."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass
class Answer:
    status: int  # 0: the connection closed without an answer
    headers: dict[str, str]
    body: bytes

    def detail(self) -> str:
        try:
            body = json.loads(self.body)
            value = body["detail"] if "detail" in body else body["error"]  # native API, or V2
        except (ValueError, KeyError, TypeError):
            return self.body[:200].decode("latin-1")
        return value if isinstance(value, str) else json.dumps(value)[:300]


def exchange(port: int, chunks: list[bytes], timeout: float = 30, pause: float = 0) -> Answer:
    """Send ``chunks`` (waiting ``pause`` s between them) on a new connection; read one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            for i, chunk in enumerate(chunks):
                if i and pause:
                    time.sleep(pause)
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading everything: read what it said
        return read_answer(sock, time.monotonic() + timeout)


def read_answer(sock: socket.socket, deadline: float) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    if b"\r\n\r\n" not in data:
        return Answer(0, {}, data)
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {k.lower(): v for k, v in headers.items()}
    length = int(headers.get("content-length", "0"))
    while len(body) < length and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Answer(int(lines[0].split()[1]), headers, body)


def request(
    method: str, path: str, body: bytes = b"", content_type: str | None = None, headers: str = ""
) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def multipart(files: list[bytes], boundary: str) -> bytes:
    """A multipart/form-data body of PNG uploads, each a ``files`` field."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{i}.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
        for i, data in enumerate(files)
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


@dataclass
class Usage:
    rss: int  # bytes resident now
    peak: int  # the most bytes ever resident (VmHWM)
    fds: int  # open file descriptors


def usage(pid: int) -> Usage:
    process = psutil.Process(pid)
    status = Path(f"/proc/{pid}/status").read_text()
    peak = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:"))
    return Usage(process.memory_info().rss, peak, process.num_fds())


def total_usage(pid: int) -> Usage:
    """Usage of a server and its worker processes together (peaks added: an upper bound)."""
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    parts = [usage(p.pid) for p in processes]
    return Usage(sum(u.rss for u in parts), sum(u.peak for u in parts), sum(u.fds for u in parts))
