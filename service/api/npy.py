"""NumPy's .npy format (``application/x-npy``), the API's binary alternative to JSON arrays.

A body's header is read first and checked against the body's length before any array is made, so a
header that declares a huge shape costs nothing; pickled (object) arrays are never read.
"""

from __future__ import annotations

import io
import math

import numpy as np
from numpy.lib import format as npy_format

from service.core.errors import BadRequest, Unprocessable

NPY = "application/x-npy"
MAX_DIMS = 8
_HEADERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}


def read_npy(body: bytes, field: str) -> np.ndarray:
    """The float array in ``body`` (read-only, no copy), or a 400/422 naming ``field``."""
    stream = io.BytesIO(body)
    try:
        version = npy_format.read_magic(stream)
        if version not in _HEADERS:
            raise ValueError(f"format version {version} is not supported")
        shape, fortran_order, dtype = _HEADERS[version](stream)
    except ValueError as e:
        raise BadRequest(field, f"not a .npy array ({e})") from e
    if dtype.kind != "f":
        raise Unprocessable(field, f"dtype {dtype}, expected a float type such as float32 ('<f4')")
    if not 1 <= len(shape) <= MAX_DIMS or min(shape) < 1:
        raise Unprocessable(field, f"shape {shape}: 1 to {MAX_DIMS} dimensions, each of at least 1")
    count = math.prod(shape)
    held = len(body) - stream.tell()
    if held != count * dtype.itemsize:
        raise BadRequest(
            field,
            f"the header declares shape {shape} of {dtype} ({count * dtype.itemsize} bytes), "
            f"the body holds {held} bytes after it",
        )
    array = np.frombuffer(body, dtype=dtype, count=count, offset=stream.tell())
    return array.reshape(shape, order="F" if fortran_order else "C")


def npy_bytes(array: np.ndarray) -> bytes:
    stream = io.BytesIO()
    npy_format.write_array(stream, np.ascontiguousarray(array), allow_pickle=False)
    return stream.getvalue()
