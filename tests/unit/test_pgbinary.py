"""The NumPy binary-COPY encoder against a row-by-row struct encoder (the format's
definition: per row a field count, then per field a length, -1 for NULL, and the bytes)."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.ingest import pgbinary

PROJECT = "6f1c9a52-3d0e-4b8a-9c1e-2a7b5d4e8f01"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _reference(frame: pl.DataFrame, project_id: str, source_id: int, batch_id: int) -> bytes:
    out = bytearray()
    for r in frame.iter_rows(named=True):
        out += struct.pack(">h", len(pgbinary.COLUMNS))
        out += struct.pack(">i", 16) + uuid.UUID(project_id).bytes
        out += struct.pack(">iq", 8, source_id) + struct.pack(">iq", 8, r["frame"])
        delta = r["ts"] - EPOCH
        us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        out += struct.pack(">iq", 8, us)
        for name in ("x", "y", "raw_x", "raw_y"):
            out += struct.pack(">id", 8, r[name])
        out += struct.pack(">iq", 8, batch_id)
        out += (struct.pack(">i", -1) if r["confidence"] is None
                else struct.pack(">if", 4, r["confidence"]))
        for name in ("track_id", "class"):
            if r[name] is None:
                out += struct.pack(">i", -1)
            else:
                raw = r[name].encode()
                out += struct.pack(">i", len(raw)) + raw
    return bytes(out)


def _frame(rows: list[tuple[str | None, str | None, float | None]]) -> pl.DataFrame:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    n = len(rows)
    return pl.DataFrame({
        "row_no": list(range(n)), "track_id": [r[0] for r in rows],
        "frame": list(range(n)),
        "ts": [base + timedelta(microseconds=123_457 * i) for i in range(n)],
        "x": [0.5 * i for i in range(n)], "y": [-1.25 * i for i in range(n)],
        "raw_x": [float(i) for i in range(n)], "raw_y": [2.0 * i for i in range(n)],
        "class": [r[1] for r in rows], "confidence": [r[2] for r in rows],
    }, schema_overrides={"confidence": pl.Float32, "ts": pl.Datetime("us", "UTC")})


def test_mixed_nulls_lengths_and_unicode() -> None:
    frame = _frame([("a", "pedestrian", 0.5), ("track-long-42", None, None),
                    ("", "vehicle", 1.0), ("ü-7", "cyclist", None), ("x", "", 0.25)])
    assert pgbinary.encode(frame, PROJECT, 3, 9) == _reference(frame, PROJECT, 3, 9)


def test_empty_frame() -> None:
    assert pgbinary.encode(_frame([]), PROJECT, 1, 1) == b""


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.text(max_size=12)),
                          st.one_of(st.none(), st.text(max_size=8)),
                          st.one_of(st.none(), st.floats(0, 1, width=32))),
                min_size=1, max_size=40))
def test_matches_row_by_row_encoding(rows: list[tuple[str | None, str | None, float | None]]
                                     ) -> None:
    frame = _frame(rows)
    assert pgbinary.encode(frame, PROJECT, 7, 11) == _reference(frame, PROJECT, 7, 11)


@pytest.mark.parametrize("n", [1, 1000])
def test_uniform_rows(n: int) -> None:
    frame = _frame([(f"t{i % 13}", "pedestrian", 0.9) for i in range(n)])
    assert pgbinary.encode(frame, PROJECT, 2, 5) == _reference(frame, PROJECT, 2, 5)
