"""Frames between femsnn and its worker: JSON header plus raw arrays, no pickle."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from femsnn.loihi.lava_worker.protocol import ProtocolError, read_frame, stream_reader, write_frame


def test_frame_round_trip_keeps_dtypes_shapes_and_values():
    arrays = {
        "inputs": np.random.default_rng(0).standard_normal((3, 4, 2)),
        "counts": np.arange(6, dtype=np.int64).reshape(2, 3),
        "empty": np.zeros((0, 5), dtype=np.float32),
        "flags": np.array([True, False]),
    }
    stream = io.BytesIO()
    write_frame(stream, {"kind": "run", "n": 1}, arrays)
    write_frame(stream, {"kind": "close"})
    stream.seek(0)
    header, got = read_frame(stream_reader(stream))
    assert header == {"kind": "run", "n": 1}
    for name, array in arrays.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape
        np.testing.assert_array_equal(got[name], array)
    assert read_frame(stream_reader(stream)) == ({"kind": "close"}, {})
    with pytest.raises(EOFError):
        read_frame(stream_reader(stream))


def test_objects_and_garbage_are_refused():
    with pytest.raises(ProtocolError, match="dtype"):
        write_frame(io.BytesIO(), {"kind": "run"}, {"x": np.array([object()], dtype=object)})
    huge = io.BytesIO(struct.pack("<Q", 1 << 40))
    with pytest.raises(ProtocolError, match="corrupt"):
        read_frame(stream_reader(huge))
    text = io.BytesIO(struct.pack("<Q", 3) + b"abc")
    with pytest.raises(ProtocolError, match="JSON"):
        read_frame(stream_reader(text))


def test_truncated_frame_is_end_of_stream():
    stream = io.BytesIO()
    write_frame(stream, {"kind": "run"}, {"x": np.ones(100)})
    truncated = io.BytesIO(stream.getvalue()[:-8])
    with pytest.raises(EOFError):
        read_frame(stream_reader(truncated))
