"""A bounded asyncio load generator (httpx): a fixed number of connections each sending requests
back to back for a fixed time, recording every status and latency."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx2 as httpx
import numpy as np

# (method, path, keyword arguments of httpx's request) -> one request to send
Request = tuple[str, str, dict]


@dataclass
class Result:
    seconds: float
    statuses: list[int] = field(default_factory=list)  # 0: a transport error
    sent: list[int] = field(default_factory=list)  # the number given to next_request, per answer
    latencies: list[float] = field(default_factory=list)
    retry_after: set[str] = field(default_factory=set)  # Retry-After values seen on 503s
    errors: list[str] = field(default_factory=list)  # transport errors, one line each

    def admitted(self) -> np.ndarray:
        return np.array([t for s, t in zip(self.statuses, self.latencies, strict=True) if s == 200])

    def count(self, status: int) -> int:
        return sum(s == status for s in self.statuses)

    def percentile_ms(self, q: float) -> float:
        admitted = self.admitted()
        return float(np.percentile(admitted, q) * 1000) if len(admitted) else float("nan")


async def _worker(
    client: httpx.AsyncClient,
    next_request: Callable[[int], Request],
    deadline: float,
    result: Result,
    n: int,
    backoff: bool,
    numbers: Iterator[int],
) -> None:
    for _ in range(n):
        if time.monotonic() >= deadline:
            return
        number = next(numbers)
        method, path, kwargs = next_request(number)
        start = time.monotonic()
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.TransportError as e:
            result.statuses.append(0)
            result.sent.append(number)
            result.latencies.append(time.monotonic() - start)
            result.errors.append(f"{method} {path}: {type(e).__name__}")
            continue
        result.statuses.append(response.status_code)
        result.sent.append(number)
        result.latencies.append(time.monotonic() - start)
        if response.status_code == 503:
            wait = response.headers.get("retry-after", "")
            result.retry_after.add(wait)
            # as a well-behaved client does, spread out so that the refused do not return as one
            if backoff and wait.isdigit():
                pause = float(wait) * random.uniform(1.0, 1.5)
                await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))


async def _drive(
    url: str,
    connections: int,
    seconds: float,
    next_request: Callable[[int], Request],
    per_connection: int,
    backoff: bool,
) -> Result:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        result = Result(seconds)
        numbers = itertools.count()  # shared: the requests go out in next_request's order
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(
                _worker(client, next_request, deadline, result, per_connection, backoff, numbers)
                for _ in range(connections)
            )
        )
        return result


def drive(
    url: str,
    connections: int,
    seconds: float,
    next_request: Callable[[int], Request],
    per_connection: int = 1_000_000,
    backoff: bool = True,
) -> Result:
    """``connections`` clients sending ``next_request(i)`` back to back for ``seconds`` (and at most
    ``per_connection`` requests each), waiting out each 503's Retry-After when ``backoff``."""
    return asyncio.run(_drive(url, connections, seconds, next_request, per_connection, backoff))
