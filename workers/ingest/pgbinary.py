"""Rows of ingest.track_points in Postgres's binary COPY format, built with NumPy (no
per-row Python): the server skips text parsing (timestamps and floats are its costliest
inputs) and the client skips formatting them.

Each row is one fixed-width block (the field count and every non-null fixed-size field,
written through a big-endian structured array) followed by the nullable and text fields
(confidence, track_id, class). The pieces are laid out with one "which piece owns this
byte" label per output byte, so the assembly is a handful of vectorised passes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_US = int((datetime(2000, 1, 1, tzinfo=UTC)
                   - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000
"""Postgres counts timestamps in microseconds since 2000-01-01 UTC."""
COLUMNS = ("project_id", "source_id", "frame", "ts", "x", "y", "raw_x", "raw_y", "batch_id",
           "confidence", "track_id", "class")
"""COPY column order: fixed-width fields first, nullable and text fields last."""
_FIXED = [("nf", ">i2"), ("l0", ">i4"), ("project_id", "V16"), ("l1", ">i4"),
          ("source_id", ">i8"), ("l2", ">i4"), ("frame", ">i8"), ("l3", ">i4"), ("ts", ">i8"),
          ("l4", ">i4"), ("x", ">f8"), ("l5", ">i4"), ("y", ">f8"), ("l6", ">i4"),
          ("raw_x", ">f8"), ("l7", ">i4"), ("raw_y", ">f8"), ("l8", ">i4"), ("batch_id", ">i8")]
FIXED = np.dtype(_FIXED)
_SIZES = {"l0": 16, "l1": 8, "l2": 8, "l3": 8, "l4": 8, "l5": 8, "l6": 8, "l7": 8, "l8": 8}

U8 = npt.NDArray[np.uint8]


def _text(col: pl.Series) -> tuple[U8, npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """UTF-8 bytes of a string column (contiguous), per-row byte lengths, null mask."""
    arr = col.fill_null("").to_arrow()  # a NULL slot may hold bytes in Arrow
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    _, off_buf, data_buf = arr.buffers()
    n = len(arr)
    offsets = np.frombuffer(off_buf, dtype=np.int64, count=n + 1, offset=arr.offset * 8)
    data = (np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]:offsets[-1]]
            if data_buf is not None else np.zeros(0, np.uint8))
    nulls = col.is_null().to_numpy()
    return data, np.diff(offsets), nulls


def _header(lengths: npt.NDArray[np.int64], nulls: npt.NDArray[np.bool_]) -> U8:
    """One 4-byte big-endian length per row (-1 for NULL)."""
    out = np.where(nulls, -1, lengths).astype(">i4")
    return out.view(np.uint8)


def _interleave(pieces: list[U8], lengths: npt.NDArray[np.int64]) -> tuple[U8, npt.NDArray[
        np.int64]]:
    """Row i is pieces[0][its bytes] + pieces[1][its bytes] + …, lengths[i, k] bytes each."""
    n, k = lengths.shape
    kinds = np.repeat(np.tile(np.arange(k, dtype=np.uint8), n), lengths.ravel())
    out = np.empty(kinds.size, np.uint8)
    if k == 2:
        mask = kinds == 0
        out[mask] = pieces[0]
        out[~mask] = pieces[1]
    else:
        for i, piece in enumerate(pieces):
            out[kinds == i] = piece
    return out, lengths.sum(axis=1)


def encode(frame: pl.DataFrame, project_id: str, source_id: int, batch_id: int) -> bytes:
    """Binary COPY rows (no signature) for `frame` (columns of Validator.stage_frame)."""
    n = frame.height
    fixed = np.empty(n, FIXED)
    fixed["nf"] = len(COLUMNS)
    for name, size in _SIZES.items():
        fixed[name] = size
    fixed["project_id"] = np.frombuffer(uuid.UUID(project_id).bytes, dtype="V16")[0]
    fixed["source_id"] = source_id
    fixed["batch_id"] = batch_id
    fixed["frame"] = frame["frame"].to_numpy()
    fixed["ts"] = frame["ts"].dt.epoch("us").to_numpy() - PG_EPOCH_US
    for name in ("x", "y", "raw_x", "raw_y"):
        fixed[name] = frame[name].to_numpy()

    conf = frame["confidence"]
    conf_null = conf.is_null().to_numpy()
    conf_block = np.empty(n, np.dtype([("len", ">i4"), ("v", ">f4")]))
    conf_block["len"] = np.where(conf_null, -1, 4)
    conf_block["v"] = conf.fill_null(0).to_numpy()
    conf_len = np.where(conf_null, 4, 8)
    conf_bytes = conf_block.view(np.uint8).reshape(n, 8)[
        np.arange(8)[None, :] < conf_len[:, None]]

    tid, tid_len, tid_null = _text(frame["track_id"])
    cls, cls_len, cls_null = _text(frame["class"])
    var, var_len = _interleave(
        [conf_bytes, _header(tid_len, tid_null), tid, _header(cls_len, cls_null), cls],
        np.stack([conf_len, np.full(n, 4), tid_len, np.full(n, 4), cls_len], axis=1))
    out, _ = _interleave([fixed.view(np.uint8), var],
                         np.stack([np.full(n, FIXED.itemsize), var_len], axis=1))
    return out.tobytes()


__all__ = ["COLUMNS", "SIGNATURE", "TRAILER", "encode"]
