"""Property: for the same points, `secinf ingest` (a JSONL file, Polars) and POST
/rpc/ingest_batch (PL/pgSQL) give the same errors — rows, columns, codes and messages, in
the same order — the same counts and the same stored rows, and neither leaves anything
behind when it refuses a batch (--strict / "strict"). Both are driven by the one table of
checks in workers/ingest/checks.py; only its path words ({line}, {no_fps}) differ."""

from __future__ import annotations

import itertools
import json
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from tests.support.postgrest import Api, ApiError
from workers.ingest import IngestRequest, Rejected, ingest
from workers.ingest.checks import PATH_WORDS

pytestmark = [pytest.mark.db, pytest.mark.slow]
Conn = psycopg.Connection[dict[str, Any]]

STORED = """SELECT track_id, frame, ts, x, y, raw_x, raw_y, class, confidence
            FROM ingest.track_points tp JOIN ingest.sources s USING (source_id)
            WHERE s.project_id = %s AND s.name = %s ORDER BY track_id, frame"""
FIELDS = ("track_id", "frame", "t", "x", "y", "class", "confidence")
BAD = {  # what a field may be instead of a good value
    "track_id": ["", "  ", None, 7, True, "a b"],
    "frame": ["abc", "NaN", "-Infinity", -1, 2.5, "3", 1e16, None, True],
    "t": ["abc", "NaN", "Infinity", -0.5, 2e9, "0.25", None, 0.0],
    "x": ["NaN", "inf", 2e6, -3e6, " 1.5 ", "", None, [1]],
    "y": ["-NaN", 1e300, "1e7", False, None],
    "class": ["car", 5, None],
    "confidence": [1.5, -0.1, "NaN", "x", 0.5, None],
}
counter = itertools.count()


@st.composite
def batches(draw: st.DrawFn) -> list[Any]:
    n = draw(st.integers(1, 10))
    tracks = draw(st.integers(1, 3))
    items: list[Any] = [{"track_id": str(i % tracks), "frame": i, "t": i / 10,
                         "x": float(i % 7), "y": 1.0, "confidence": 0.9} for i in range(n)]
    for _ in range(draw(st.integers(0, 5))):
        i = draw(st.integers(0, n - 1))
        kind = draw(st.sampled_from(["bad", "drop", "item", "copy", "jump", "late"]))
        if not isinstance(items[i], dict) or (i == 0 and kind in ("drop", "item")):
            continue  # a JSONL file's columns (and format) come from its first line
        if kind == "bad":
            name = draw(st.sampled_from(FIELDS))
            items[i] = {**items[i], name: draw(st.sampled_from(BAD[name]))}
        elif kind == "drop":
            items[i] = {k: v for k, v in items[i].items()
                        if k != draw(st.sampled_from(FIELDS))}
        elif kind == "item":
            items[i] = draw(st.sampled_from([[1, 2], "point", 3, None]))
        elif kind == "copy":      # duplicate key, or frame_time_mismatch when t differs
            items.append({**items[i], "t": draw(st.sampled_from([items[i].get("t"), 9.0]))})
        elif kind == "jump":      # implausible_speed
            items[i] = {**items[i], "x": 5000.0 + i}
        else:                     # a frame earlier in time than the one before it
            items[i] = {**items[i], "t": -1.0 + i / 100}
    return items


def _as_api(errors: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The CLI's errors in the API's words (its path words are the table's only difference)."""
    cli, api = PATH_WORDS["cli"], PATH_WORDS["api"]
    out = []
    for e in errors:
        msg = e["message"].replace(f"the {cli['line']} is", f"the {api['line']} is")
        msg = msg.replace(cli["no_fps"], api["no_fps"])
        out.append((e["row"], e["column"], e["code"], msg))
    return out


def _points(db: Conn, project: str, source: str) -> list[dict[str, Any]]:
    rows = db.execute(STORED, (project, source)).fetchall()
    db.rollback()
    return rows


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(items=batches(), fps=st.sampled_from([None, 10.0]), strict=st.booleans())
def test_the_cli_and_the_api_give_the_same_errors(
        db: Conn, api: Api, projects: tuple[str, str],
        tmp_path_factory: pytest.TempPathFactory, items: list[Any], fps: float | None,
        strict: bool) -> None:
    project = projects[0]
    n = next(counter)
    cli_source, api_source = f"cli-{n}", f"api-{n}"
    path = tmp_path_factory.mktemp("same") / "points.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    batch: dict[str, Any] = {"source": api_source, "points": items, "strict": strict}
    if fps is not None:
        batch["fps"] = fps

    try:
        cli = ingest(db, IngestRequest(project=project, source=cli_source, path=path, fps=fps,
                                       strict=strict)).as_json()
        cli_refused = False
    except Rejected as exc:
        cli, cli_refused = exc.summary.as_json(), True
    try:
        out = api.rpc("ingest_batch", p_batch=Jsonb(batch))
        assert isinstance(out, dict)
        api_refused = False
    except ApiError as exc:
        assert (exc.status, exc.details is not None) == (422, True), exc
        out, api_refused = json.loads(exc.details or "{}"), True

    assert cli_refused == api_refused
    assert [(e["row"], e["column"], e["code"], e["message"]) for e in out["errors"]] == (
        _as_api(cli["errors"]))
    for key in ("rows_total", "invalid", "error_counts"):
        assert out[key] == cli[key], key
    if api_refused:   # nothing behind: no source, no batch, no point
        assert not db.execute("SELECT 1 FROM ingest.sources WHERE name IN (%s, %s)",
                              (cli_source, api_source)).fetchone()
        db.rollback()
        return
    assert (out["inserted"], out["duplicate"]) == (cli["inserted"], cli["duplicate"])
    stored = _points(db, project, api_source)
    assert stored == _points(db, project, cli_source)
    assert len(stored) == out["inserted"] == out["rows_total"] - out["invalid"]
