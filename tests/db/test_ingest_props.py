"""Property-based bad input over every format: a clear error, nothing partial, nothing
lost (every row read is inserted, a duplicate, invalid or ignored — and stored rows equal
the inserted count)."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.db.test_ingest_load import counts
from tests.support.factories import make_project
from workers.errors import UserError
from workers.ingest import IngestRequest, ingest

pytestmark = [pytest.mark.db, pytest.mark.slow]
Conn = psycopg.Connection[dict[str, Any]]

BAD_VALUES = ["nan", "inf", "-inf", "", "abc", "-5", "1e300", "2.5", "null", "\"\""]
cell = st.one_of(st.sampled_from(BAD_VALUES), st.integers(-3, 50).map(str),
                 st.floats(-100, 100).map(repr))


def _rows(draw: st.DrawFn) -> list[list[str]]:
    n = draw(st.integers(1, 12))
    rows = [[str(i % 3), str(i), f"{i / 10}", f"{i * 0.3}", "1.0"] for i in range(n)]
    for _ in range(draw(st.integers(0, 6))):
        r, c = draw(st.integers(0, n - 1)), draw(st.integers(0, 4))
        rows[r][c] = draw(cell)
    if draw(st.booleans()):
        rows.append(list(draw(st.sampled_from(rows))))  # duplicate key
    return rows


@st.composite
def bad_file(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(["csv", "jsonl", "parquet", "mot", "eth"]))
    rows = _rows(draw)
    if fmt == "csv":
        cols = ["track_id", "frame", "t", "x", "y"]
        if draw(st.integers(0, 5)) == 0:
            cols = cols[: draw(st.integers(0, 4))]  # missing columns
        body = "\n".join(",".join(r[: len(cols)]) for r in rows)
        data = (",".join(cols) + "\n" + body + "\n").encode()
    elif fmt == "jsonl":
        data = "\n".join(json.dumps(dict(zip(["track_id", "frame", "t", "x", "y"], r,
                                             strict=True))) for r in rows).encode() + b"\n"
    elif fmt == "parquet":
        frame = pl.DataFrame({k: [r[i] for r in rows] for i, k in
                              enumerate(["track_id", "frame", "t", "x", "y"])})
        import io
        buf = io.BytesIO()
        frame.write_parquet(buf)
        data = buf.getvalue()
    elif fmt == "mot":
        data = "\n".join(f"{r[1]},{r[0]},{r[3]},{r[4]},10,20,1,1,1" for r in rows).encode()
    else:
        data = "\n".join(f"{r[1]}\t{r[0]}\t{r[3]}\t{r[4]}" for r in rows).encode()
    if draw(st.integers(0, 6)) == 0:  # corrupt bytes somewhere
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        data = data[:pos] + draw(st.binary(min_size=1, max_size=4)) + data[pos + 1:]
    if draw(st.integers(0, 8)) == 0:
        data = data[: draw(st.integers(0, len(data)))]  # truncated
    return fmt, data


SUFFIX = {"csv": "t.csv", "jsonl": "t.jsonl", "parquet": "t.parquet", "mot": "gt.txt",
          "eth": "t.txt"}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=bad_file(), strict=st.booleans())
def test_bad_input_is_clear_and_never_partial(db: Conn, tmp_path_factory: pytest.TempPathFactory,
                                              case: tuple[str, bytes], strict: bool) -> None:
    fmt, data = case
    if not db.execute("SELECT 1 FROM core.projects").fetchone():
        make_project(db, "acme", "plaza")
    db.rollback()
    path = tmp_path_factory.mktemp("bad") / SUFFIX[fmt]
    path.write_bytes(data)
    before = counts(db)
    try:
        out = ingest(db, IngestRequest(project="acme/plaza", source="cam", path=path,
                                       fmt={"csv": "canonical-csv", "parquet":
                                            "canonical-parquet"}.get(fmt, fmt),
                                       fps=10.0, strict=strict))
    except UserError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        assert counts(db) == before
        return
    after = counts(db)
    if out.duplicate_batch:
        assert after == before
        return
    assert out.rows_total == out.inserted + out.duplicate + out.invalid + out.ignored
    assert after["points"] - before["points"] == out.inserted
    assert after["batches"] == before["batches"] + 1
    assert len(out.errors) == min(100, sum(out.error_counts.values()))
    if strict:
        assert out.invalid == 0
