"""No silent nothing: `pipeline.source_checks` warnings (no ontology, implausible speeds and
heights, features without candidates) in `secinf tick`, `secinf pipeline status`, KPF
ingest, and `secinf pipeline settings` (show, set, refuse, recompute)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psycopg
import pytest
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from tests.support.scene_loader import load_tracks, project, run_tick
from workers.cli import output
from workers.cli.main import app
from workers.db.queries import query
from workers.errors import UserError
from workers.ingest import IngestRequest, ingest
from workers.ingest.kpf import KpfOptions
from workers.ingest.krtd import parse_krtd
from workers.pipeline.runner import tick
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
FPS = 10.0
TIMES, EN_DASH = "\u00d7", "\u2013"  # as the messages write them


def walkers(speed: float, seconds: float = 20.0, pair: bool = True) -> pl.DataFrame:
    """Two people side by side (1 m apart) walking along x at `speed` until the second
    leaves at 3/4 of the time (an accompany candidate), or one alone (no candidate of any
    kind)."""
    parts = []
    for k in range(2 if pair else 1):
        frames = np.arange(int(seconds * FPS * (1.0 if k == 0 else 0.75)))
        parts.append(pl.DataFrame({"track_id": [str(k + 1)] * len(frames), "frame": frames,
                                   "t": frames / FPS, "x": speed * frames / FPS,
                                   "y": [float(k)] * len(frames)}))
    return pl.concat(parts)


def scene(db: Conn, slug: str, speed: float, *, ontology: bool = True, pair: bool = True,
          tick: bool = True) -> tuple[str, int]:
    pid = project(db, slug)
    if ontology:
        store.load(db, pid, load_ontology(DEFAULT_PATH))
    source = load_tracks(db, pid, walkers(speed, pair=pair), FPS, name=f"{slug}-cam")
    if tick:
        run_tick(db)
    return pid, source


def checks(db: Conn, source: int) -> dict[str, str]:
    row = db.execute("SELECT pipeline.source_checks(%s) AS w", (source,)).fetchone()
    db.commit()
    assert row is not None
    return {w["code"]: w["message"] for w in row["w"]}


# ---------------------------------------------------------------------------- the checks
def test_a_good_scene_has_no_warnings(db: Conn) -> None:
    _, source = scene(db, "good", 1.3)
    types = db.execute("SELECT array_agg(type ORDER BY type) AS t FROM candidates.candidates "
                       "WHERE source_id = %s", (source,)).fetchone()
    assert types is not None and "accompany" in types["t"], types
    assert checks(db, source) == {}


def test_no_ontology(db: Conn) -> None:
    _, source = scene(db, "bare", 1.3, ontology=False)
    assert checks(db, source) == {
        "no_ontology": "source bare-cam: project bare-org/bare has no active ontology, so no "
                       "candidates are computed; run `secinf rules load -p bare-org/bare`"}


@pytest.mark.parametrize(("speed", "shown"), [(8.0, "8.00"), (0.1, "0.10")])
def test_implausible_speed(db: Conn, speed: float, shown: str) -> None:
    _, source = scene(db, "fast" if speed > 1 else "slow", speed)
    assert checks(db, source) == {
        "implausible_speed": f"source {'fast' if speed > 1 else 'slow'}-cam: people walk at a "
                             f"median {shown} m/s (expected 0.8{EN_DASH}2.0): check "
                             "--units/--scale/--homography or --fps"}


def test_speed_is_not_judged_on_pixels_or_on_other_classes(db: Conn) -> None:
    pid = project(db, "px")
    store.load(db, pid, load_ontology(DEFAULT_PATH))
    px = load_tracks(db, pid, walkers(80.0), FPS, name="px-cam", units="px")
    cars = load_tracks(db, pid, walkers(12.0), FPS, name="road-cam")
    db.execute("UPDATE ingest.track_points SET class = 'car' WHERE source_id = %s", (cars,))
    db.commit()
    run_tick(db)
    assert "implausible_speed" not in checks(db, px)
    assert "implausible_speed" not in checks(db, cars)


def test_too_few_slow_points_are_not_judged(db: Conn) -> None:
    pid = project(db, "few")
    source = load_tracks(db, pid, walkers(0.1, seconds=19.9, pair=False), FPS, name="few")
    run_tick(db)
    assert "implausible_speed" not in checks(db, source)  # 199 points


def observe(db: Conn, source: int, p50: float) -> None:
    db.execute(query("pipeline", "record_observed"), {"source_id": source, "observed": Jsonb(
        {"person_height_m": {"p10": p50 - 0.1, "p50": p50, "p90": p50 + 0.1, "tracks": 5}})})
    db.commit()


def test_implausible_height(db: Conn) -> None:
    _, source = scene(db, "tall", 1.3)
    db.execute("UPDATE ingest.sources SET attributes = '{\"simulated\": 1, \"observed\": "
               "{\"other\": 2}}' WHERE source_id = %s", (source,))
    observe(db, source, 1.75)
    assert checks(db, source) == {}
    observe(db, source, 1.28)
    assert checks(db, source) == {
        "implausible_height": "source tall-cam: people come out 1.28 m tall: the camera "
                              f"model's scale is off by about {TIMES}1.33; distances and "
                              "speeds are "
                              "scaled the same way — fix the calibration (or expect "
                              "thresholds to be met at the wrong distances)"}
    attributes = db.execute("SELECT attributes FROM ingest.sources WHERE source_id = %s",
                            (source,)).fetchone()
    assert attributes is not None
    assert attributes["attributes"]["simulated"] == 1  # merged, not replaced
    assert attributes["attributes"]["observed"]["other"] == 2
    observe(db, source, 2.3)
    assert f"{TIMES}0.74" in checks(db, source)["implausible_height"]


def test_no_candidates(db: Conn) -> None:
    _, source = scene(db, "lonely", 1.3, pair=False)
    assert checks(db, source) == {
        "no_candidates": "source lonely-cam: features for 200 points but no candidates: the "
                         "active ontology's rules found nothing — check the units and "
                         "`secinf rules show -p lonely-org/lonely`"}
    # Before any tick nothing is judged; an ontology loaded after the tick asks for a backfill.
    pid2, late = scene(db, "late", 1.3, pair=False, ontology=False, tick=False)
    assert checks(db, late) == {"no_ontology": checks(db, late)["no_ontology"]}
    run_tick(db)
    store.load(db, pid2, load_ontology(DEFAULT_PATH))
    assert "run `secinf rules backfill -p late-org/late --source late-cam`" in \
        checks(db, late)["no_candidates"]


def test_checks_stay_cheap_on_a_larger_source(db: Conn) -> None:
    """The speed sample reads at most 10,000 rows of the newest ten minutes."""
    pid = project(db, "big")
    store.load(db, pid, load_ontology(DEFAULT_PATH))
    n = 60_000
    frames = np.arange(n)
    big = pl.DataFrame({"track_id": ["1"] * n, "frame": frames, "t": frames / FPS,
                        "x": 9.0 * frames / FPS, "y": [0.0] * n})
    source = load_tracks(db, pid, big, FPS, name="big-cam")
    run_tick(db)
    db.execute("ANALYZE features.kinematics")
    db.commit()
    plan = db.execute("EXPLAIN (ANALYZE, FORMAT JSON) SELECT pipeline.source_checks(%s)",
                      (source,)).fetchone()
    assert plan is not None
    assert plan["QUERY PLAN"][0]["Execution Time"] < 1000
    assert "median 9.00 m/s" in checks(db, source)["implausible_speed"]


def test_a_failing_check_does_not_fail_the_ticks(db: Conn) -> None:
    """The tick runs the checks as role pipeline: without the grant they fail, the ticks
    stay committed and the report says why."""
    _, source = scene(db, "nogrant", 1.3, tick=False)
    db.execute("REVOKE EXECUTE ON FUNCTION pipeline.source_checks(bigint) FROM pipeline")
    db.commit()
    report = tick(db, until_idle=True)
    assert report.points == 350 and not report.errors
    assert [w["code"] for w in report.warnings] == ["checks_failed"]
    assert "permission denied for function source_checks" in report.warnings[0]["message"]
    assert db.execute("SELECT pipeline.watermark(%s) IS NOT NULL AS ok",
                      (source,)).fetchone() == {"ok": True}  # every stage ran


# ---------------------------------------------------------------------------- the CLI
def test_tick_and_status_show_the_warnings(db: Conn, secinf_env: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the status table, unwrapped
    # ... also where the console fixed its width when it was made (COLUMNS set then)
    monkeypatch.setattr(output.console, "_width", 300)
    _, fast = scene(db, "clifast", 8.0, tick=False)
    _, bare = scene(db, "clibare", 1.3, ontology=False, tick=False)
    runner = CliRunner()
    out = runner.invoke(app, ["tick", "--until-idle", "--json"])
    assert out.exit_code == 0, out.output
    warnings = json.loads(out.stdout)["warnings"]
    assert [(w["source_id"], w["source"], w["code"]) for w in warnings] == [
        (fast, "clifast-cam", "implausible_speed"), (bare, "clibare-cam", "no_ontology")]
    assert all(w["message"].startswith(f"source {w['source']}: ") for w in warnings)

    out = runner.invoke(app, ["tick"])  # nothing new to tick: no source, no warning
    assert out.exit_code == 0 and "warning" not in out.output
    db.execute("DELETE FROM features.watermarks WHERE source_id = %s", (bare,))
    db.commit()
    out = runner.invoke(app, ["tick", "--until-idle"])
    assert out.exit_code == 0, out.output
    assert "tick(s), 350 points" in out.stdout
    assert "warning (no_ontology): source clibare-cam: project clibare-org/clibare has no " \
        "active ontology" in " ".join(out.stderr.split())

    out = runner.invoke(app, ["pipeline", "status", "--json"])
    rows = {r["source"]: r["warnings"] for r in json.loads(out.stdout)}
    assert [w["code"] for w in rows["clifast-cam"]] == ["implausible_speed"]
    assert rows["clibare-cam"][0]["message"].startswith("source clibare-cam: project")
    out = runner.invoke(app, ["pipeline", "status"])
    assert out.exit_code == 0 and "implausible_speed" in out.stdout and "no_ontology" in out.stdout


# ---------------------------------------------------------------------------- KPF ingest
# A camera 10 m above the origin looking straight down; people walk along x = 0.
DOWN = "1000 0 960\n0 1000 540\n0 0 1\n\n1 0 0\n0 -1 0\n0 0 -1\n\n0 0 10\n\n0 0 0 0 0\n"


def kpf_clip(folder: Path, height_m: float, tracks: int = 2) -> Path:
    camera = parse_krtd(DOWN)
    lines = ['- { meta: "clip" }\n']
    types = ['- { meta: clip }\n']
    for k in range(tracks):
        for f in range(40):
            y = 2.0 + k + f * 0.13
            (u, v2), (_, v1) = camera.project(np.array([[0.0, y, 0.0], [0.0, y, height_m]]))
            lines.append(f"- {{ geom: {{id1: {k + 1}, id0: {f}, ts0: {f}, ts1: {f / 30:.2f}, "
                         f"g0: {u - 10:.3f} {v1:.3f} {u + 10:.3f} {v2:.3f} }} }}\n")
        types.append(f"- {{ types: {{ id1: {k + 1}, cset3: {{ person: 1.0 }} }} }}\n")
    (folder / "clip.geom.yml").write_text("".join(lines))
    (folder / "clip.types.yml").write_text("".join(types))
    (folder / "camera.krtd").write_text(DOWN)
    return folder / "clip.geom.yml"


@pytest.mark.parametrize("height_m", [1.1, 1.72])
def test_kpf_ingest_records_person_heights_and_warns(db: Conn, tmp_path: Path,
                                                     height_m: float) -> None:
    project(db, "kpf")
    heard: list[str] = []
    summary = ingest(db, IngestRequest(project="kpf-org/kpf", source="gate",
                                       path=kpf_clip(tmp_path, height_m), kpf=KpfOptions(),
                                       on_warning=heard.append))
    assert summary.inserted == 80
    row = db.execute("SELECT source_id, attributes -> 'observed' -> 'person_height_m' AS h "
                     "FROM ingest.sources WHERE name = 'gate'").fetchone()
    assert row is not None
    assert row["h"]["tracks"] == 2
    assert row["h"]["p50"] == pytest.approx(height_m, abs=1e-3)
    if height_m < 1.4:
        assert heard == [f"source gate: people come out {height_m:.2f} m tall: the camera "
                         f"model's scale is off by about {TIMES}{1.7 / height_m:.2f}; distances "
                         "and speeds are scaled the same way — fix the calibration (or "
                         "expect thresholds to be met at the wrong distances)"]
    else:
        assert heard == []
    assert "implausible_height" in checks(db, row["source_id"]) or height_m >= 1.4


# ---------------------------------------------------------------------------- settings
def settings_cli(*args: str) -> Any:
    out = CliRunner().invoke(app, ["pipeline", "settings", *args])
    return out


def test_settings_show_set_refuse_and_recompute(db: Conn, secinf_env: str) -> None:
    pid, source = scene(db, "tune", 1.3)
    candidates = db.execute("SELECT count(*) AS n FROM candidates.candidates").fetchone()

    out = settings_cli("-p", "tune-org/tune", "--json")
    assert out.exit_code == 0, out.output
    rows = {r["key"]: r for r in json.loads(out.stdout)["settings"]}
    assert rows["smoothing_s"] == {"key": "smoothing_s", "default": 1.0, "project": 1.0,
                                   "effective": 1.0}  # the ontology wrote the project's
    assert rows["settle_s"] == {"key": "settle_s", "default": 2.0, "project": None,
                                "effective": 2.0}

    out = settings_cli("-p", "tune-org/tune", "--source", "tune-cam", "smoothing_s=0.4")
    assert out.exit_code == 0, out.output
    assert "source tune-cam: smoothing_s = 0.4" in out.stdout
    assert "stored features of source tune-cam are not recomputed" in " ".join(out.stderr.split())
    assert "--recompute" in out.stderr
    value = db.execute("SELECT pipeline.source_setting_float(%s, 'smoothing_s') AS v",
                       (source,)).fetchone()
    assert value == {"v": 0.4}
    out = settings_cli("-p", "tune-org/tune", "--source", "tune-cam", "--json")
    rows = {r["key"]: r for r in json.loads(out.stdout)["settings"]}
    assert rows["smoothing_s"]["source"] == 0.4 and rows["smoothing_s"]["effective"] == 0.4
    assert rows["gap_limit_s"]["source"] is None

    out = settings_cli("-p", "tune-org/tune", "settle_s=5", "--json")
    assert json.loads(out.stdout)["changed"] == {"settle_s": 5}
    assert json.loads(out.stdout)["notes"] == []
    out = settings_cli("-p", "tune-org/tune", "settle_s=default", "--json")
    rows = {r["key"]: r for r in json.loads(out.stdout)["settings"]}
    assert rows["settle_s"]["project"] is None and rows["settle_s"]["effective"] == 2.0

    # Refusals: per-source keys, unknown keys, bad values; nothing is stored by them.
    for args, message in [
        (["--source", "tune-cam", "gap_limit_s=2"], "gap_limit_s cannot be set per source: "
         "the stages read only smoothing_s per source; drop --source"),
        (["smoothing=1"], "smoothing: no such pipeline setting; the keys are "
                          "analyst_connection_limit, analyst_idle_in_transaction_max_s"),
        (["smoothing_s=11"], "smoothing_s=11: out of range (0 to 10)"),
        (["smoothing_s=-1"], "smoothing_s=-1: out of range (0 to 10)"),
        (["smoothing_s=fast"], "smoothing_s=fast: not a number; e.g. smoothing_s=1.0"),
        (["gap_limit_s=-2"], "gap_limit_s=-2: out of range (at least 0)"),
        (["smoothing_s"], "'smoothing_s': write KEY=VALUE"),
        (["--source", "nope", "smoothing_s=1"], "--source nope: no such source"),
    ]:
        out = settings_cli("-p", "tune-org/tune", *args)
        assert isinstance(out.exception, UserError), (args, out.output)
        assert message in " ".join(str(out.exception).split()), (args, out.exception)
    out = settings_cli("-p", "tune-org/tune", "hysteresis_frames=3", "--json")
    assert json.loads(out.stdout)["changed"] == {"hysteresis_frames": 3}

    # Recompute: the next tick redoes the source from the start; candidates stay single.
    kin = db.execute("SELECT sum(speed) AS s FROM features.kinematics WHERE source_id = %s",
                     (source,)).fetchone()
    settings_cli("-p", "tune-org/tune", "hysteresis_frames=default")
    out = settings_cli("-p", "tune-org/tune", "--source", "tune-cam", "smoothing_s=default",
                       "--recompute", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["recomputed_sources"] == 1
    assert db.execute("SELECT count(*) AS n FROM features.watermarks WHERE source_id = %s",
                      (source,)).fetchone() == {"n": 0}
    ran = run_tick(db)
    assert ran["sources"][0]["points"] == 350
    assert db.execute("SELECT sum(speed) AS s FROM features.kinematics WHERE source_id = %s",
                      (source,)).fetchone() == kin
    assert db.execute("SELECT count(*) AS n FROM candidates.candidates").fetchone() == candidates
    assert pid
