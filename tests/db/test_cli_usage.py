"""`secinf usage show` and `secinf quotas show|set|clear` through their typer functions,
plus the plan and priority `secinf jobs list` shows; usage rows are written directly as
billing.count writes them (one row per project, metric and UTC hour)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from tests.support.factories import make_project
from workers import tenancy, usage
from workers.cli import output
from workers.cli.jobs_cmd import app as jobs_app
from workers.cli.usage_cmd import quotas_app, usage_app
from workers.errors import NotFound, UserError
from workers.queue import client

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
GIB = 2**30
METRICS = ("api_requests, bytes_ingested, candidates_scored, dataset_bytes_downloaded, "
           "events_verified, points_ingested, source_seconds")

cli = typer.Typer()
cli.add_typer(usage_app, name="usage")
cli.add_typer(quotas_app, name="quotas")
cli.add_typer(jobs_app, name="jobs")


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich tables as wide as they want (CliRunner's stdout is no terminal)."""
    monkeypatch.setattr(output.console, "width", 200)


@pytest.fixture
def project(db: Conn, secinf_env: str) -> str:
    """acme/north on the free plan (bytes_ingested: 1 GiB a month)."""
    return make_project(db, "acme", "north")


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def record(db: Conn, project: str, metric: str, amount: int, hour: Any = None) -> None:
    db.execute("INSERT INTO billing.usage (project_id, metric, hour, amount)"
               " VALUES (%s, %s, billing.hour_of(coalesce(%s, now())), %s)",
               (project, metric, hour, amount))
    db.commit()


def last_month(db: Conn) -> datetime:
    """10:00 UTC on the 15th of the previous month."""
    row = db.execute("SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month'"
                     " + interval '14 days 10 hours') AT TIME ZONE 'UTC' AS at").fetchone()
    assert row is not None
    at: datetime = row["at"]
    return at


# ---------------------------------------------------------------- usage show
def test_usage_show_lists_every_metric_against_its_quota(db: Conn, project: str) -> None:
    record(db, project, "bytes_ingested", 900 * 2**20)
    record(db, project, "source_seconds", 7200)
    out = run("usage", "show", "-p", "acme/north", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    rows = {r["metric"]: r for r in doc["usage"]}
    assert sorted(rows) == METRICS.split(", ")
    assert doc["project_id"] == project and doc["period"] is None
    b = rows["bytes_ingested"]
    assert (b["used"], b["quota"], b["quota_source"], b["unit"]) == (
        900 * 2**20, GIB, "plan", "bytes")
    assert b["used_fraction"] == pytest.approx(900 / 1024)
    now = datetime.now(UTC)
    assert b["period_start"] == f"{now:%Y-%m}-01T00:00:00+00:00"
    assert rows["api_requests"]["period"] == "day"
    assert rows["api_requests"]["period_start"] == f"{now:%Y-%m-%d}T00:00:00+00:00"

    out = run("usage", "show", "-p", "acme/north")
    assert out.exit_code == 0, out.output
    line = next(x for x in out.stdout.splitlines() if "bytes_ingested" in x)
    assert "900.0 MiB" in line and "1.0 GiB" in line and "87.9 %" in line
    assert f"{now:%Y-%m}-01" in line and " UTC" in line
    seconds = next(x for x in out.stdout.splitlines() if "source_seconds" in x)
    assert "120 min" in seconds and "6,000 min" in seconds and "2.0 %" in seconds
    assert "at 80 % or more of the quota: bytes_ingested" in out.stdout


def test_a_past_period_and_the_hours_of_one_metric(db: Conn, project: str) -> None:
    past = last_month(db)
    record(db, project, "points_ingested", 1234, past)
    record(db, project, "points_ingested", 766, past + timedelta(hours=2))
    record(db, project, "points_ingested", 99)  # this month: not in the past period
    month, day = f"{past:%Y-%m}", f"{past:%Y-%m-%d}"

    doc = json.loads(run("usage", "show", "-p", "acme/north", "--period", month,
                         "--hourly", "points_ingested", "--json").stdout)
    rows = {r["metric"]: r for r in doc["usage"]}
    assert rows["points_ingested"]["used"] == 2000
    assert rows["points_ingested"]["period_start"].startswith(f"{month}-01")
    hours = doc["hourly"]["hours"]
    assert hours[0]["hour"] == f"{month}-01T00:00:00+00:00"
    span = (datetime.fromisoformat(rows["points_ingested"]["resets_at"])
            - datetime.fromisoformat(hours[0]["hour"]))
    assert len(hours) == span.days * 24 and span.days in (28, 29, 30, 31)
    assert sum(h["amount"] for h in hours) == 2000
    # A day of that month: its daily metrics are that day's, its monthly ones the month's.
    doc = json.loads(run("usage", "show", "-p", "acme/north", "--period", day, "--json",
                         "--hourly", "points_ingested").stdout)
    assert len(doc["hourly"]["hours"]) == 24
    assert [h["amount"] for h in doc["hourly"]["hours"]][10:13] == [1234, 0, 766]
    assert {r["metric"]: r["period_start"][:10] for r in doc["usage"]}["api_requests"] == day

    out = run("usage", "show", "-p", "acme/north", "--period", day, "--hourly",
              "points_ingested")
    assert out.exit_code == 0, out.output
    assert "points_ingested per UTC hour" in out.stdout and "2,000 in all" in out.stdout
    [chart] = [x for x in out.stdout.splitlines() if x.startswith(day)]
    assert "········" in chart and "█·▅" in chart and "peak 1,234 at 10:00" in chart


def test_the_default_chart_is_the_last_24_hours(db: Conn, project: str) -> None:
    record(db, project, "api_requests", 40)
    doc = json.loads(run("usage", "show", "-p", "acme/north", "--hourly", "api_requests",
                         "--json").stdout)
    hours = doc["hourly"]["hours"]
    assert len(hours) == 24 and hours[-1]["amount"] == 40
    assert sum(h["amount"] for h in hours) == 40
    doc = json.loads(run("usage", "show", "-p", "acme/north", "--hourly", "api_requests",
                         "--hours", "3", "--json").stdout)
    assert [h["amount"] for h in doc["hourly"]["hours"]] == [0, 0, 40]


@pytest.mark.parametrize(("args", "message"), [
    (["--period", "2026-13"], 'period "2026-13" is not a date of the calendar (Months run'),
    (["--period", "december"], 'period "december" is neither a month (YYYY-MM) nor a day '
                               "(YYYY-MM-DD) (e.g. 2026-12 for December 2026"),
    (["--period", "2999-01"], 'period "2999-01" has not begun (it starts 2999-01-01 00:00 '
                              "UTC) (Name the current period or a past one.)"),
    (["--hourly", "bogus"], f"unknown metric 'bogus': use one of {METRICS}"),
    (["--hours", "745", "--hourly", "api_requests"], "--hours 745: chart 1 to 744 hours"),
])
def test_bad_input_names_itself_and_the_fix(project: str, args: list[str], message: str
                                            ) -> None:
    out = run("usage", "show", "-p", "acme/north", *args)
    assert isinstance(out.exception, UserError), out.output
    assert str(out.exception).startswith(message), str(out.exception)


def test_an_unknown_project_is_a_clear_error(secinf_env: str) -> None:
    for args in (["usage", "show"], ["quotas", "show"]):
        out = run(*args, "-p", "nobody/nothing")
        assert isinstance(out.exception, NotFound)
        assert 'unknown project "nobody/nothing"' in str(out.exception)


# ---------------------------------------------------------------- quotas
def test_an_operator_sets_and_clears_a_project_quota(db: Conn, project: str) -> None:
    record(db, project, "bytes_ingested", 900 * 2**20)
    out = run("quotas", "set", "-p", "acme/north", "bytes_ingested", "10Gi", "--reason",
              "pilot customer, ticket 42", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {
        "project": "acme/north", "metric": "bytes_ingested", "before": GIB,
        "before_source": "plan", "quota": 10 * GIB, "quota_source": "override",
        "changed": True}
    shown = {r["metric"]: r for r in json.loads(
        run("quotas", "show", "-p", "acme/north", "--json").stdout)["quotas"]}
    b = shown["bytes_ingested"]
    assert (b["quota"], b["quota_source"], b["plan_quota"], b["plan"]) == (
        10 * GIB, "override", GIB, "free")
    assert b["reason"] == "pilot customer, ticket 42" and b["set_by"]
    assert shown["points_ingested"]["quota_source"] == "plan"
    table = run("quotas", "show", "-p", "acme/north").stdout
    line = next(x for x in table.splitlines() if "bytes_ingested" in x)
    assert "10.0 GiB" in line and "override" in line and "pilot customer" in line
    assert "plan free" in table
    # The use against it follows; the warning is gone.
    out = run("usage", "show", "-p", "acme/north")
    assert "8.8 %" in out.stdout and "at 80 %" not in out.stdout

    out = run("quotas", "set", "-p", "acme/north", "api_requests", "unlimited", "--reason",
              "load test")
    assert out.exit_code == 0, out.output
    assert "api_requests of acme/north: 10,000, the plan's → unlimited, its own" in out.stdout
    out = run("quotas", "clear", "-p", "acme/north", "bytes_ingested", "--reason",
              "pilot over")
    assert out.exit_code == 0, out.output
    assert ("bytes_ingested of acme/north: 10,737,418,240, its own → 1,073,741,824, the "
            "plan's") in out.stdout
    out = run("quotas", "clear", "-p", "acme/north", "bytes_ingested", "--reason", "again")
    assert out.exit_code == 0
    assert "had no quota of its own: nothing changed (1,073,741,824, the plan's)" in out.stdout
    audit = db.execute("SELECT action, target, details ->> 'reason' AS reason FROM audit.log"
                       " WHERE action LIKE 'quota.%%' ORDER BY audit_id").fetchall()
    assert [(a["action"], a["target"], a["reason"]) for a in audit] == [
        ("quota.set", "bytes_ingested", "pilot customer, ticket 42"),
        ("quota.set", "api_requests", "load test"),
        ("quota.clear", "bytes_ingested", "pilot over")]


@pytest.mark.parametrize(("args", "message"), [
    (["set", "bogus", "5", "--reason", "why not"], f"unknown metric 'bogus': use one of "
                                                   f"{METRICS}"),
    (["clear", "bogus", "--reason", "why not"], "unknown metric 'bogus'"),
    (["set", "points_ingested", "lots", "--reason", "why not"],
     "quota 'lots' is not a whole number: give N >= 0 (e.g. 5000, 10Gi, 2M) or 'unlimited'"),
    (["set", "points_ingested", "2.5M", "--reason", "why not"], "quota '2.5M' is not a whole"),
    (["set", "points_ingested", "5", "--reason", "  "],
     "say why the quota changes (--reason, at least 3 characters)"),
])
def test_quota_mistakes_are_refused_with_the_fix(db: Conn, project: str, args: list[str],
                                                 message: str) -> None:
    out = run("quotas", *args[:1], "-p", "acme/north", *args[1:])
    assert isinstance(out.exception, UserError), out.output
    assert str(out.exception).startswith(message), str(out.exception)
    assert db.execute("SELECT count(*) AS n FROM billing.quota_overrides").fetchone() == {"n": 0}


def test_only_an_operator_changes_a_quota(db: Conn, project: str) -> None:
    """Under an API role's claims the same call is refused, with who may do it."""
    db.execute("SELECT set_config('request.jwt.claims', %s, false)",
               (json.dumps({"role": "project_admin", "project_id": project}),))
    with pytest.raises(UserError, match="only an administrator can set a quota: quotas are "
                                        "changed by an operator, connected as a superuser"):
        usage.set_quota(db, project, "points_ingested", 5, "trying")
    assert db.execute("SELECT count(*) AS n FROM billing.quota_overrides").fetchone() == {"n": 0}


def test_quota_numbers_as_typed() -> None:
    assert [usage.parse_quota(t) for t in ("0", "5000", "1_000_000", "2,500", "2M", "3k",
                                           "10Gi", "1Ti", "unlimited", "None")] == [
        0, 5000, 1_000_000, 2500, 2_000_000, 3000, 10 * GIB, 2**40, None, None]
    assert [usage.amount_text(v, u) for v, u in (
        (0, "bytes"), (1023, "bytes"), (1536, "bytes"), (5 * GIB, "bytes"), (30, "seconds"),
        (7200, "seconds"), (360000, "seconds"), (1234567, "points"), (None, "points"))] == [
        "0 B", "1023 B", "1.5 KiB", "5.0 GiB", "0.5 min", "120 min", "6,000 min",
        "1,234,567", "—"]
    assert [usage.percent_text(f) for f in (None, 0.0, 0.8, 1.5, float("inf"))] == [
        "—", "0.0 %", "80.0 %", "150.0 %", "∞"]
    assert [usage.level(f) for f in (None, 0.79, 0.8, 1.0)] == ["unlimited", "ok", "near",
                                                               "over"]
    assert usage.sparkline([0, 1, 4, 8]) == "·▁▄█"


# ---------------------------------------------------------------- priority by plan
def test_jobs_list_shows_plan_and_priority_and_the_queue_per_plan(db: Conn,
                                                                  secinf_env: str) -> None:
    free = make_project(db, "freeco", "flood")
    team = tenancy.create_project(db, "payco", "rush", plan="team")["project_id"]
    for _ in range(3):
        client.enqueue(db, free, "noop", {})
    client.enqueue(db, str(team), "noop", {})
    db.commit()
    rows = json.loads(run("jobs", "list", "--json").stdout)
    assert [(r["project"], r["plan"], r["priority"], r["plan_priority"]) for r in rows] == [
        ("payco/rush", "team", 5, 5), *[("freeco/flood", "free", 0, 0)] * 3]
    table = run("jobs", "list").stdout
    assert "plan" in table and "team" in table and "free" in table
    plans = json.loads(run("jobs", "list", "--summary", "--json").stdout)
    assert [(p["plan"], p["priority"], p["queued"], p["due"], p["running"], p["projects"])
            for p in plans] == [("enterprise", 10, 0, 0, 0, 0), ("team", 5, 1, 1, 0, 1),
                                ("free", 0, 3, 3, 0, 1)]
    assert plans[2]["oldest_wait_s"] >= 0 and plans[0]["oldest_wait_s"] is None
    out = run("jobs", "list", "--summary")
    assert out.exit_code == 0 and "queue by plan" in out.stdout
    out = run("jobs", "list", "--summary", "--state", "queued")
    assert isinstance(out.exception, UserError) and "leave out --state" in str(out.exception)
