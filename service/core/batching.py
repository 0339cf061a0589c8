"""Dynamic batching, as Triton's dynamic batcher does it: concurrent requests for one network of one
model are merged into a single onnxruntime run and the results are split back in order.

Requests wait in a bounded queue. One consumer task takes the oldest, adds the next ones while their
rows fit in ``max_batch`` (a request is never split, so one larger than that runs alone), waits up to
``max_delay`` for more when the batch is not full, then runs it. Under load the next batch fills
while one runs, without any added delay; at one connection a request runs at once.

Where a batch runs is a matter of measured cost: handing work to a thread and back costs about
100 us on a small machine, more than a decoder run of a few rows, so small batches run on the event
loop itself; large ones run in the batcher's own thread (onnxruntime releases the GIL), where the
event loop can go on parsing requests on another core meanwhile.

A request's input is checked before it queues, so a merged run can only fail on something the
inputs share; if one fails anyway, each request of the batch is run alone, so only the culprit sees
the error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import Gauge

from service.core.errors import Overloaded
from service.metrics import BATCH_SIZE, QUEUE_DEPTH, REJECTED, child

log = logging.getLogger(__name__)

Outputs = tuple[np.ndarray, ...]
Network = Callable[[np.ndarray], Outputs]


@dataclass
class _Request:
    x: np.ndarray
    future: asyncio.Future[Outputs]


@dataclass
class BatchLimits:
    max_batch: int  # most rows in one merged run
    max_delay: float  # seconds a batch that is not full may wait for more rows
    max_queue: int  # most requests waiting; beyond it a request is refused with 503
    max_inline_rows: int  # runs up to this many rows stay on the event loop, larger ones go to a thread


@dataclass
class Batcher:
    """Merges concurrent calls of ``network`` (rows in -> rows out) into batched runs."""

    network: Network
    limits: BatchLimits
    labels: tuple[str, str, str]  # model, version, network: for the metrics
    _queue: deque[_Request] = field(default_factory=deque)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _consumer: asyncio.Task[None] | None = None
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="batcher")
    )

    async def __call__(self, x: np.ndarray) -> Outputs:
        if len(self._queue) >= self.limits.max_queue:
            child(REJECTED, *self.labels).inc()
            raise Overloaded(
                "queue",
                f"{len(self._queue)} requests are waiting for {'/'.join(self.labels)}, "
                f"the limit is {self.limits.max_queue} (VAE_MAX_QUEUE); retry shortly",
            )
        future: asyncio.Future[Outputs] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(x, future))
        self._arrived.set()
        if self._consumer is None or self._consumer.done():
            self._consumer = asyncio.create_task(self._consume(), name=f"batcher {'/'.join(self.labels)}")
        return await future

    async def _consume(self) -> None:
        """Runs as long as the batcher: waiting costs less than a new task per batch."""
        while True:
            if not self._queue:
                await self._arrived.wait()
            batch = self._take([])
            try:
                if self.limits.max_delay > 0 and _rows(batch) < self.limits.max_batch:
                    batch = await self._fill(batch)
                await self._run(batch)
            except Exception as e:  # a bug here must fail its requests, never strand the queue
                log.exception("batcher %s failed", "/".join(self.labels))
                for request in batch:
                    _settle(request, error=e)

    def _take(self, batch: list[_Request]) -> list[_Request]:
        """Moves waiting requests into ``batch`` while their rows fit (the first one always does)."""
        rows = _rows(batch)
        while self._queue:
            head = self._queue[0]
            if head.future.done():  # its client went away while it waited
                self._queue.popleft()
                continue
            if batch and rows + len(head.x) > self.limits.max_batch:
                break
            batch.append(self._queue.popleft())
            rows += len(head.x)
        self._arrived.clear()
        self._depth.set(len(self._queue))  # once per batch, not twice per request
        return batch

    async def _fill(self, batch: list[_Request]) -> list[_Request]:
        deadline = time.perf_counter() + self.limits.max_delay
        while _rows(batch) < self.limits.max_batch and not self._queue:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                break
            batch = self._take(batch)
        return batch

    async def _run(self, batch: list[_Request]) -> None:
        batch = [r for r in batch if not r.future.done()]
        if not batch:
            return
        x = batch[0].x if len(batch) == 1 else np.concatenate([r.x for r in batch])
        child(BATCH_SIZE, *self.labels).observe(len(x))
        try:
            outputs = await self._infer(x)
        except Exception as e:
            if len(batch) == 1:
                _settle(batch[0], error=e)
                return
            log.warning("a merged run of %d requests failed (%s); running each alone", len(batch), e)
            for request in batch:
                try:
                    _settle(request, await self._infer(request.x))
                except Exception as alone:
                    _settle(request, error=alone)
            return
        start = 0
        for request in batch:
            stop = start + len(request.x)
            _settle(request, tuple(out[start:stop] for out in outputs))
            start = stop

    async def _infer(self, x: np.ndarray) -> Outputs:
        if len(x) <= self.limits.max_inline_rows:
            return self.network(x)  # handing a run this small to a thread costs more than the run
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.network, x)

    @property
    def _depth(self) -> Gauge:
        return child(QUEUE_DEPTH, *self.labels)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _rows(batch: list[_Request]) -> int:
    return sum(len(r.x) for r in batch)


def _settle(request: _Request, outputs: Outputs | None = None, error: Exception | None = None) -> None:
    if request.future.done():  # cancelled while it ran: nobody is waiting for it
        return
    if error is not None:
        request.future.set_exception(error)
    else:
        assert outputs is not None
        request.future.set_result(outputs)
