"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in the fuzzing test: how to send a .npy body."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.transport.serialization import Binary


@schemathesis.serializer("application/x-npy")
def npy(context: Any, value: Any) -> bytes:
    # the schema says "binary": schemathesis draws arbitrary bytes (and sample files), sent as they are
    return value.data if isinstance(value, Binary) else str(value).encode()
