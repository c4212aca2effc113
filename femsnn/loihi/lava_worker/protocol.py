"""Messages between femsnn and its Lava worker: a JSON header plus raw numpy arrays, no pickle.

A frame is an 8-byte little-endian header length, the UTF-8 JSON header, then the bytes of each
array listed in ``header["arrays"]`` (name, dtype, shape), C order. Only plain numeric dtypes
travel, so neither side ever unpickles what the other sent.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np

#: dtypes allowed on the wire (little-endian, as numpy spells them)
WIRE_DTYPES = ("<f8", "<f4", "<i8", "<i4", "|b1", "|u1")
MAX_HEADER_BYTES = 1 << 24
_LENGTH = struct.Struct("<Q")


class ProtocolError(RuntimeError):
    """A malformed frame: the other side is not a femsnn peer or the stream is corrupt."""


def encode_frame(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> list[bytes]:
    """Frame pieces (length, header, array bytes) for a header dict and named arrays."""
    arrays = arrays or {}
    specs, payloads = [], []
    for name, array in arrays.items():
        wire = np.ascontiguousarray(array, dtype=np.asarray(array).dtype.newbyteorder("<"))
        if wire.dtype.str not in WIRE_DTYPES:
            raise ProtocolError(f"array '{name}' has dtype {wire.dtype}, not one of {WIRE_DTYPES}")
        specs.append({"name": name, "dtype": wire.dtype.str, "shape": list(wire.shape)})
        payloads.append(wire.tobytes())
    text = json.dumps({**header, "arrays": specs}).encode()
    return [_LENGTH.pack(len(text)), text, *payloads]


def write_frame(stream: BinaryIO, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> None:
    """Write one frame to a binary stream and flush it."""
    for piece in encode_frame(header, arrays):
        stream.write(piece)
    stream.flush()


def read_frame(read_exact: Callable[[int], bytes]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read one frame with read_exact(n) (which returns exactly n bytes or raises): header, arrays."""
    (length,) = _LENGTH.unpack(read_exact(_LENGTH.size))
    if length > MAX_HEADER_BYTES:
        raise ProtocolError(f"frame header of {length} bytes exceeds {MAX_HEADER_BYTES}: corrupt stream")
    try:
        header = json.loads(read_exact(length))
    except ValueError as exc:
        raise ProtocolError(f"frame header is not JSON: {exc}") from exc
    arrays = {}
    for spec in header.pop("arrays", []):
        if spec["dtype"] not in WIRE_DTYPES:
            raise ProtocolError(f"array '{spec['name']}' has dtype {spec['dtype']}, not one of {WIRE_DTYPES}")
        dtype, shape = np.dtype(spec["dtype"]), tuple(int(n) for n in spec["shape"])
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        arrays[spec["name"]] = np.frombuffer(read_exact(nbytes), dtype=dtype).reshape(shape).copy()
    return header, arrays


def stream_reader(stream: BinaryIO) -> Callable[[int], bytes]:
    """read_exact for a blocking binary stream: EOFError when the peer closed it mid-frame."""

    def read_exact(n: int) -> bytes:
        data = stream.read(n)
        if data is None or len(data) != n:
            raise EOFError("the peer closed the pipe")
        return data

    return read_exact
