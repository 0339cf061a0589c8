"""When to try again: exponential backoff with full jitter, never sooner than Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass

RETRY_STATUSES = frozenset({429, 502, 503, 504})  # overloaded or briefly away: worth another try


@dataclass(frozen=True)
class Retry:
    attempts: int = 8  # tries in all, the first included
    base: float = 0.1  # seconds before the first retry (before jitter)
    cap: float = 10.0  # longest wait between tries

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (0-based)."""
        backoff = random.uniform(0, min(self.cap, self.base * 2**attempt))
        if retry_after is not None and retry_after.strip().isdigit():
            # the server said when; jitter on top spreads the clients it refused together
            return min(self.cap, float(retry_after)) * random.uniform(1.0, 1.25) + backoff / 4
        return backoff
