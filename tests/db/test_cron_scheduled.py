"""The scheduled path under pg_cron, on a private throwaway cluster (pg_cron lives only in
the database named by cron.database_name): `secinf-pipeline-tick` (CALL
pipeline.run_scheduled()), `secinf-review-promote` (SELECT events.promote()) and
`secinf-records-retention` (CALL records.run_retention()) run as role `pipeline` in
background workers and do their work.

One cluster serves the module, and one wait serves every test: every job is switched off
while the data goes in; then the tick job is switched on and, once its first run is over,
the promote job, whose first run makes events of the tick's candidates a minute later (and
of candidates inserted directly), then retention (nightly in production, moved to every
minute), which takes an expired project's points. pg_cron schedules by the minute and may
skip the minute in which a job is altered, so that is about three minutes (four at most); a
failure prints every run pg_cron recorded. The jobs run one after the other here so each
run's rows are its own; the last test replays the lock order of tick and promote at once
(they used to deadlock).

What happened inside the runs is read from a probe the test adds to its own cluster: a
trigger on pipeline.runs, events.events and records.retention_steps records, per row, the
backend (pg_cron's job_pid), the top-level transaction and the session's role. Distinct
transactions within one job run are what proves that run_scheduled and run_retention commit
after every unit."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.db.review_helpers import Scene, make_candidate, make_scene, share
from tests.support.scene_loader import load_sim, load_tracks, project
from tests.support.throwaway_cluster import throwaway_cluster
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology
from workers.simulate import preset_config, simulate

pytestmark = [pytest.mark.db, pytest.mark.slow]
Conn = psycopg.Connection[dict[str, Any]]
TICK = "secinf-pipeline-tick"
PROMOTE = "secinf-review-promote"
RETENTION = "secinf-records-retention"
CATEGORIES = ("track_points", "features", "candidates", "events", "dataset_files", "audit")
OLD_DAY = datetime(2025, 6, 1, tzinfo=UTC)     # long past every free-plan retention
SPAN_S = 10.0        # the camera project's tick_max_span_s: its 40 s scene needs 4 ticks
RULE_AT = 0.7        # the camera project's auto_accept_rule (the model's path is off there)
WAIT_S = 330         # three minute boundaries, one maybe skipped, a loaded machine

PROBE = """
CREATE SCHEMA probe;
CREATE TABLE probe.writes (
  tbl          text NOT NULL,
  row_id       bigint NOT NULL,
  pid          integer NOT NULL,      -- the backend: pg_cron's job_run_details.job_pid
  xid          bigint NOT NULL,       -- the top-level transaction (not a savepoint's)
  xact_start   timestamptz NOT NULL,
  session_role text NOT NULL
);
CREATE FUNCTION probe.record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO probe.writes VALUES (TG_TABLE_NAME, (to_jsonb(NEW) ->> TG_ARGV[0])::bigint,
                                   pg_backend_pid(), pg_current_xact_id()::text::bigint,
                                   now(), session_user);
  RETURN NULL;
END $$;
CREATE TRIGGER probe AFTER INSERT ON pipeline.runs
  FOR EACH ROW EXECUTE FUNCTION probe.record('run_id');
CREATE TRIGGER probe AFTER INSERT ON events.events
  FOR EACH ROW EXECUTE FUNCTION probe.record('event_id');
CREATE TRIGGER probe AFTER INSERT ON records.retention_steps
  FOR EACH ROW EXECUTE FUNCTION probe.record('step');
"""


@dataclass
class Scheduled:
    conninfo: str
    jobs: dict[str, dict[str, Any]]      # as migrated, before the test switched them
    cam: int                             # a simulated scene, ontology loaded: the tick's work
    bad: int                             # another tenant's source, poisoned: fails its tick
    scored: Scene                        # a third project with candidates inserted directly
    by_model: int
    by_rule: int
    low: int
    retired: str                         # a project whose points all expired
    keeper: str                          # one that keeps its points, sharing a day with it
    runs: list[dict[str, Any]] = field(default_factory=list)   # every cron run, in order
    tick: dict[str, Any] | None = None                         # the tick job's run
    promote: dict[str, Any] | None = None                      # the promote job's, after it
    retention: dict[str, Any] | None = None                    # retention's, last

    @property
    def report(self) -> str:
        return "cron runs:\n" + "\n".join(
            f"  {r['runid']} {r['jobname']} pid {r['job_pid']} {r['username']} {r['status']}"
            f" {r['start_time']} .. {r['end_time']}: {r['return_message']}" for r in self.runs)


def _walkers() -> pl.DataFrame:
    """Two walkers 1 m apart, 5 s at 10 fps."""
    f = np.arange(50)
    return pl.concat([pl.DataFrame({"track_id": tid, "frame": f, "t": f / 10.0,
                                    "x": f * 0.1 + off, "y": np.full(50, off)})
                      for tid, off in (("1", 0.0), ("2", 1.0))])


def _switch(admin: psycopg.Connection[Any], jobids: list[int], active: bool) -> None:
    for jobid in jobids:
        admin.execute("SELECT cron.alter_job(%s, active => %s)", (jobid, active))


def _now(admin: psycopg.Connection[Any]) -> datetime:
    row = admin.execute("SELECT now() AS at").fetchone()
    assert row is not None
    return row["at"]  # type: ignore[no-any-return]


def _cron_runs(admin: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return admin.execute("SELECT d.runid, j.jobname, d.jobid, d.job_pid, d.username, d.status,"
                         " d.return_message, d.start_time, d.end_time"
                         " FROM cron.job_run_details d JOIN cron.job j USING (jobid)"
                         " ORDER BY d.runid").fetchall()


def project_of(db: Conn, source_id: int) -> str:
    row = db.execute("SELECT project_id::text AS p FROM ingest.sources WHERE source_id = %s",
                     (source_id,)).fetchone()
    assert row is not None
    return str(row["p"])


def _setup(db: Conn) -> dict[str, Any]:
    """The data of every test, committed while the jobs are off."""
    db.execute(PROBE)
    db.commit()
    pid = project(db, "cam")
    store.load(db, pid, load_ontology(DEFAULT_PATH))
    db.execute("INSERT INTO pipeline.settings (project_id, key, value) VALUES"
               " (%s, 'tick_max_span_s', %s)", (pid, str(SPAN_S)))
    db.commit()
    share(db, pid, 0.0, auto_model=None, auto_rule=RULE_AT)
    cam = load_sim(db, pid, simulate(preset_config("corridor", seed=3, duration=40)),
                   name="cam")
    bad = load_tracks(db, project(db, "bad"), _walkers(), 10.0, name="bad-cam")
    db.execute("UPDATE ingest.track_points SET x = 1e300 WHERE source_id = %s"
               " AND track_id = '1' AND frame = 20", (bad,))
    db.commit()
    scored = make_scene(db, "scored-org", "scored")
    share(db, scored.project_id, 0.0, auto_model=0.9, auto_rule=0.95)
    # The projects above keep everything (their scenes are dated long ago); 'retired' lets
    # its points go after 30 days (the free plan), 'keeper' keeps them and shares a day.
    for kept in (pid, project_of(db, bad), scored.project_id):
        for category in CATEGORIES:
            db.execute("SELECT records.set_retention(%s, %s, NULL, 'cron test: keep')",
                       (kept, category))
    retired, keeper = project(db, "retired"), project(db, "keeper")
    db.execute("SELECT records.set_retention(%s, 'track_points', NULL, 'cron test: keep')",
               (keeper,))
    for owner, days in ((retired, (0, 1)), (keeper, (1,))):
        source_id = load_tracks(db, owner, _walkers(), 10.0, name=f"{owner[:8]}-cam")
        db.execute("DELETE FROM ingest.track_points WHERE source_id = %s", (source_id,))
        for day in days:
            db.execute("INSERT INTO ingest.track_points (project_id, source_id, track_id, frame,"
                       " ts, x, y, class, confidence, batch_id) SELECT %s, %s, '1', f,"
                       " %s + f * interval '100 ms', f * 0.1, 0, 'pedestrian', 0.9,"
                       " (SELECT max(batch_id) FROM ingest.batches WHERE source_id = %s)"
                       " FROM generate_series(0, 99) f",
                       (owner, source_id, OLD_DAY + timedelta(days=day), source_id))
    db.commit()
    return {"cam": cam, "bad": bad, "scored": scored,
            "by_model": make_candidate(db, scored, start=1, end=2, model_score=0.93,
                                       rule_score=0.2),
            "by_rule": make_candidate(db, scored, start=2, end=3, rule_score=0.97),
            "low": make_candidate(db, scored, start=3, end=4, model_score=0.6,
                                  rule_score=0.9),
            "retired": retired, "keeper": keeper}


@pytest.fixture(scope="module")
def scheduled() -> Iterator[Scheduled]:
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("SECINF_"):
                mp.delenv(key)
        with throwaway_cluster("secinf-cron-") as tc, \
                psycopg.connect(tc.conninfo, row_factory=dict_row, autocommit=True) as admin:
            jobs = {r["jobname"]: r for r in admin.execute(
                "SELECT jobid, jobname, schedule, command, username, database, active"
                " FROM cron.job WHERE jobname IN (%s, %s, %s)",
                (TICK, PROMOTE, RETENTION)).fetchall()}
            assert set(jobs) == {TICK, PROMOTE, RETENTION}, jobs
            ours = [jobs[n]["jobid"] for n in (TICK, PROMOTE, RETENTION)]
            # Every job off; only ours come back. (pg_cron 1.4's launcher waits for a
            # running background worker's output, pg_cron issue #200: the analyst
            # watchdog's 50 s run would hold up the runs of every other job.)
            every = [r["jobid"] for r in admin.execute("SELECT jobid FROM cron.job")]
            _switch(admin, every, False)
            time.sleep(1.5)   # pg_cron's launcher re-reads cron.job within a second
            with psycopg.connect(tc.conninfo, row_factory=dict_row) as db:
                data = _setup(db)
            early = admin.execute("SELECT (SELECT count(*) FROM pipeline.runs) AS runs,"
                                  " (SELECT count(*) FROM events.events) AS events").fetchone()
            assert early == {"runs": 0, "events": 0}, ("a job ran while it was off", early,
                                                       _cron_runs(admin))
            s = Scheduled(tc.conninfo, jobs, **data)
            # The tick first; the promote job once the tick's run is over. Run in the same
            # minute, the two can deadlock (test_promote_and_a_tick_do_not_deadlock below).
            tick_on = _now(admin)
            _switch(admin, [jobs[TICK]["jobid"]], True)
            promote_on: datetime | None = None
            retention_on = tick_on
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                done = [r for r in _cron_runs(admin) if r["status"] in ("succeeded", "failed")]
                s.tick = next((r for r in done if r["jobname"] == TICK
                               and r["start_time"] >= tick_on), None)
                if s.tick is not None and promote_on is None:
                    # no second tick: it could retry the failed source a minute on
                    _switch(admin, [jobs[TICK]["jobid"]], False)
                    promote_on = _now(admin)
                    _switch(admin, [jobs[PROMOTE]["jobid"]], True)
                if promote_on is not None and s.promote is None:
                    s.promote = next((r for r in done if r["jobname"] == PROMOTE
                                      and r["start_time"] >= promote_on), None)
                    if s.promote is not None:
                        # Retention last (nightly in production: every minute here).
                        _switch(admin, [jobs[PROMOTE]["jobid"]], False)
                        retention_on = _now(admin)
                        admin.execute("SELECT cron.alter_job(%s, schedule => '* * * * *',"
                                      " active => true)", (jobs[RETENTION]["jobid"],))
                if s.promote is not None:
                    s.retention = next((r for r in done if r["jobname"] == RETENTION
                                        and r["start_time"] >= retention_on), None)
                    if s.retention is not None:
                        break
                time.sleep(0.5)
            # Freeze what the tests read.
            _switch(admin, ours, False)
            settle = time.monotonic() + 30
            while time.monotonic() < settle and admin.execute(
                    "SELECT 1 FROM cron.job_run_details WHERE status IN ('starting',"
                    " 'running') AND jobid = ANY (%s)", (ours,)).fetchone():
                time.sleep(0.2)
            s.runs = _cron_runs(admin)
            yield s


def _connect(s: Scheduled) -> Conn:
    return psycopg.connect(s.conninfo, row_factory=dict_row, autocommit=True)


def _writes(db: Conn, tbl: str, ids: list[int]) -> list[dict[str, Any]]:
    return db.execute("SELECT row_id, pid, xid, xact_start, session_role FROM probe.writes"
                      " WHERE tbl = %s AND row_id = ANY (%s) ORDER BY row_id",
                      (tbl, ids)).fetchall()


def test_both_jobs_are_scheduled_every_minute_as_pipeline(scheduled: Scheduled) -> None:
    s = scheduled
    commands = {"secinf-pipeline-tick": "CALL pipeline.run_scheduled()",
                "secinf-review-promote": "SELECT events.promote()"}
    for name, command in commands.items():
        job = s.jobs[name]
        assert {k: job[k] for k in ("schedule", "command", "username", "active")} == {
            "schedule": "* * * * *", "command": command, "username": "pipeline",
            "active": True}, name
    with _connect(s) as db:
        assert s.jobs[TICK]["database"] == s.jobs[PROMOTE]["database"] == db.info.dbname
    ours = [r for r in s.runs if r["jobname"] in commands]
    assert ours and {r["username"] for r in ours} == {"pipeline"}, s.report


def test_the_tick_job_works_the_source_in_several_committed_ticks(
        scheduled: Scheduled) -> None:
    s = scheduled
    assert s.tick is not None, f"no {TICK} run within {WAIT_S} s\n{s.report}"
    # run_scheduled only WARNs about the failing source: the job itself succeeds
    assert (s.tick["status"], s.tick["return_message"]) == ("succeeded", "CALL"), s.report
    with _connect(s) as db:
        runs = db.execute("SELECT run_id, status, to_ts, points FROM pipeline.runs"
                          " WHERE source_id = %s ORDER BY run_id", (s.cam,)).fetchall()
        span = db.execute(
            "SELECT min(ts) AS oldest, max(ts) AS newest, count(*) AS points,"
            " (SELECT pipeline.setting_float(project_id, 'settle_s') FROM ingest.sources"
            "   WHERE source_id = %(s)s) AS settle_s"
            " FROM ingest.track_points WHERE source_id = %(s)s", {"s": s.cam}).fetchone()
        assert span is not None
        target = span["newest"] - timedelta(seconds=span["settle_s"])
        # Ranges of at most SPAN_S from the oldest point, the last one up to the target:
        # several ticks, each a range of its own.
        ends, to = [], span["oldest"]
        while to < target:
            to = min(to + timedelta(seconds=SPAN_S), target)
            ends.append(to)
        assert len(ends) >= 2
        assert [(r["status"], r["to_ts"]) for r in runs] == [("ok", e) for e in ends], (
            runs, s.report)
        # All of them in this one job run, by role pipeline, each in its own transaction
        # (committed one after the other): run_scheduled COMMITs after every tick.
        writes = _writes(db, "runs", [r["run_id"] for r in runs])
        assert [w["row_id"] for w in writes] == [r["run_id"] for r in runs]
        assert {(w["pid"], w["session_role"]) for w in writes} == {
            (s.tick["job_pid"], "pipeline")}, (writes, s.report)
        assert len({w["xid"] for w in writes}) == len(runs), writes
        starts = [w["xact_start"] for w in writes]
        assert starts == sorted(starts) and len(set(starts)) == len(runs), writes
        # (pg_cron's start_time is written once the worker runs: no lower bound)
        assert starts[-1] <= s.tick["end_time"]
        # The watermark reached what a scheduled tick works up to (the settle margin before
        # the newest point), and the features of every point up to it are in.
        status = db.execute("SELECT watermark, newest, dirty_pending, failures"
                            " FROM pipeline.status WHERE source_id = %s", (s.cam,)).fetchone()
        assert status == {"watermark": target, "newest": span["newest"], "dirty_pending": 0,
                          "failures": 0}
        stages = db.execute("SELECT count(*) AS n, min(watermark) AS lo, max(watermark) AS hi"
                            " FROM features.watermarks WHERE source_id = %s",
                            (s.cam,)).fetchone()
        enabled = db.execute("SELECT count(*) AS n FROM pipeline.stages WHERE enabled"
                             ).fetchone()
        assert stages == {"n": enabled["n"] if enabled else None, "lo": target, "hi": target}
        counts = db.execute(
            "SELECT (SELECT count(*) FROM features.kinematics WHERE source_id = %(s)s) AS kin,"
            " (SELECT count(*) FROM ingest.track_points WHERE source_id = %(s)s"
            "    AND ts <= %(t)s) AS upto,"
            " (SELECT count(*) FROM candidates.candidates WHERE source_id = %(s)s) AS cands",
            {"s": s.cam, "t": target}).fetchone()
        assert counts is not None and counts["upto"] < span["points"]
        assert counts["kin"] == counts["upto"] and counts["cands"] > 0, counts


def test_a_failing_source_is_backed_off_without_failing_the_job(scheduled: Scheduled) -> None:
    s = scheduled
    assert s.tick is not None and s.tick["status"] == "succeeded", s.report
    with _connect(s) as db:
        runs = db.execute("SELECT run_id, status, error FROM pipeline.runs"
                          " WHERE source_id = %s ORDER BY run_id", (s.bad,)).fetchall()
        assert [(r["status"], r["error"]) for r in runs] == [
            ("error", "value out of range: overflow")], runs
        assert [(w["pid"], w["session_role"]) for w in _writes(db, "runs", [runs[0]["run_id"]])
                ] == [(s.tick["job_pid"], "pipeline")], s.report
        failure = db.execute("SELECT stage, sqlstate, failures FROM pipeline.source_failures"
                             " WHERE source_id = %s", (s.bad,)).fetchone()
        assert failure == {"stage": "kinematics", "sqlstate": "22003", "failures": 1}
        left = db.execute("SELECT (SELECT count(*) FROM features.kinematics"
                          "         WHERE source_id = %(s)s) AS kin,"
                          " (SELECT count(*) FROM features.watermarks"
                          "   WHERE source_id = %(s)s) AS wm", {"s": s.bad}).fetchone()
        assert left == {"kin": 0, "wm": 0}   # its range was rolled back


def test_the_promote_job_turns_candidates_above_the_thresholds_into_events(
        scheduled: Scheduled) -> None:
    s = scheduled
    assert s.promote is not None, (
        f"no {PROMOTE} run after the {TICK} run within {WAIT_S} s\n{s.report}")
    assert (s.promote["status"], s.promote["return_message"]) == ("succeeded", "SELECT 1"), (
        s.report)
    with _connect(s) as db:
        events = {r["candidate_id"]: r for r in db.execute(
            "SELECT e.event_id, e.candidate_id, e.source_id, e.source, e.verified_by,"
            " e.confidence, c.status, c.rule_score, c.rule_name"
            " FROM events.events e JOIN candidates.candidates c USING (candidate_id)"
            ).fetchall()}
        # Inserted candidates: the model's threshold, then the rule's; the low one stays.
        assert {c: (events[c]["source"], events[c]["verified_by"], events[c]["status"])
                for c in (s.by_model, s.by_rule) if c in events} == {
            s.by_model: ("model", "m-1", "accepted"),
            s.by_rule: ("rule", "default.follow", "accepted")}, s.report
        low = db.execute("SELECT status FROM candidates.candidates WHERE candidate_id = %s",
                         (s.low,)).fetchone()
        assert s.low not in events and low == {"status": "scored"}
        # The tick's candidates: the strict ones at or above the project's rule threshold
        # became rule events (by the job run that followed the tick, at the latest).
        cands = db.execute("SELECT candidate_id, tier, rule_score, rule_name, status"
                           " FROM candidates.candidates WHERE source_id = %s", (s.cam,)
                           ).fetchall()
        above = {c["candidate_id"] for c in cands
                 if c["tier"] == "strict" and c["rule_score"] >= RULE_AT}
        assert above and len(above) < len(cands), cands   # the threshold splits them
        mine = {c: e for c, e in events.items() if e["source_id"] == s.cam}
        assert set(mine) == above, (cands, mine, s.report)
        for c in cands:
            if c["candidate_id"] in above:
                e = mine[c["candidate_id"]]
                assert (e["source"], e["verified_by"], e["confidence"], e["status"]) == (
                    "rule", c["rule_name"], c["rule_score"], "accepted"), (c, e)
            else:
                assert c["status"] == "new", c
        # Every event made by that job run, as pipeline; the audit log says so too.
        writes = _writes(db, "events", [e["event_id"] for e in events.values()])
        assert len(writes) == len(events)
        assert {(w["pid"], w["session_role"]) for w in writes} == {
            (s.promote["job_pid"], "pipeline")}, (writes, s.report)
        audit = db.execute("SELECT actor, sum((details ->> 'events')::int) AS n"
                           " FROM audit.log WHERE action = 'events.promote' GROUP BY actor"
                           ).fetchall()
        assert audit == [{"actor": "pipeline", "n": len(events)}], audit


def test_retention_runs_under_pg_cron_a_commit_per_unit(scheduled: Scheduled) -> None:
    s = scheduled
    run = s.retention
    assert run is not None, s.report
    assert (run["status"], run["return_message"], run["username"]) == (
        "succeeded", "CALL", "pipeline"), s.report
    with _connect(s) as db:
        [recorded] = db.execute("SELECT run_id, status, started_by, rows, chunks"
                                " FROM records.retention_runs").fetchall()
        assert recorded["status"] == "ok" and recorded["started_by"] == "pipeline", recorded
        points = {r["p"]: r["n"] for r in db.execute(
            "SELECT project_id::text AS p, count(*) AS n FROM ingest.track_points"
            " GROUP BY 1").fetchall()}
        assert s.retired not in points                    # every point of it went
        assert points[s.keeper] == 100                    # the shared day kept the keeper's
        assert all(points.get(p, 0) > 0 for p in (project_of(db, s.cam),))
        steps = db.execute("SELECT step, method, relation, rows, chunks FROM"
                           " records.retention_steps WHERE run_id = %s ORDER BY step",
                           (recorded["run_id"],)).fetchall()
        methods = {st["method"] for st in steps}
        assert {"drop_chunks", "delete"} <= methods, steps
        assert sum(st["rows"] for st in steps if st["method"] == "delete") == 100, steps
        writes = _writes(db, "retention_steps", [st["step"] for st in steps])
    assert {(w["pid"], w["session_role"]) for w in writes} == {(run["job_pid"], "pipeline")}
    assert len({w["xid"] for w in writes}) >= 2, writes   # COMMITs between units


# ---------------------------------------------------------------- the two jobs at once
UPSERT = """
INSERT INTO candidates.candidates AS c (project_id, source_id, type, actors, start_ts, end_ts,
                                        rule_name, ontology_id, ontology_version, rule_score)
SELECT project_id, source_id, type, actors, start_ts, end_ts, rule_name, ontology_id,
       ontology_version, rule_score FROM candidates.candidates WHERE candidate_id = %s
ON CONFLICT ON CONSTRAINT candidates_once DO UPDATE
  SET rule_score = EXCLUDED.rule_score, updated_at = now()
  WHERE c.status = 'new' AND c.rule_score IS DISTINCT FROM EXCLUDED.rule_score
"""


def test_promote_skips_a_source_being_ticked_so_the_two_never_deadlock(
        scheduled: Scheduled) -> None:
    """The lock order of one minute's two jobs, made deterministic. A tick holds its source
    row FOR UPDATE and later upserts that source's candidates; promote used to lock the
    candidates first and then wait for the source row (its events' foreign key): a
    deadlock, seen under pg_cron in 2 of 4 runs of this module. Now promote takes the
    sources first, skipping one a tick holds (it is promoted at the next run)."""
    s = scheduled
    with _connect(s) as admin:
        cid = make_candidate(admin, s.scored, start=6, end=7, model_score=0.99)
    with psycopg.connect(s.conninfo, row_factory=dict_row) as tick, \
            _connect(s) as promoter, _connect(s) as db:
        tick.execute("SET statement_timeout = '20s'")
        tick.execute("SELECT 1 FROM ingest.sources WHERE source_id = %s FOR UPDATE",
                     (s.scored.source_id,))
        promoter.execute("SET ROLE pipeline")
        promoter.execute("SET statement_timeout = '5s'")  # waiting would be the bug
        promoter.execute("SELECT events.promote(%s)", (s.scored.project_id,))
        assert db.execute("SELECT 1 FROM events.events WHERE candidate_id = %s",
                          (cid,)).fetchone() is None  # its source was being ticked
        tick.execute(UPSERT, (cid,))                    # the tick's candidates: no deadlock
        tick.commit()
        promoter.execute("SELECT events.promote(%s)", (s.scored.project_id,))
        event = db.execute("SELECT source FROM events.events WHERE candidate_id = %s",
                           (cid,)).fetchone()
    assert event == {"source": "model"}
