"""Contract: POST /rpc/usage, /rpc/usage_hourly, GET /invoices and /subscription through the
PostgREST request model: the caller's project and organization only, each refusal with the
HTTP status PostgREST gives it and a message naming the input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.support.postgrest import Api, ApiError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def counted(db: Conn, projects: tuple[str, str]) -> None:
    """This hour: A ingested 4 000 points, B 9 999; B's organization has an invoice."""
    a, b = projects
    for project, n in ((a, 4000), (b, 9999)):
        db.execute("INSERT INTO billing.usage (project_id, metric, hour, amount)"
                   " VALUES (%s, 'points_ingested', billing.hour_of(now()), %s)", (project, n))
    db.execute("INSERT INTO billing.invoices (stripe_invoice_id, org_id, number, status,"
               " currency, amount_due, amount_paid, stripe_updated)"
               " SELECT 'in_globex1', org_id, 'G-1', 'open', 'eur', 100, 0, now()"
               " FROM core.projects WHERE project_id = %s", (b,))
    db.commit()


def test_usage_is_the_callers_project_against_its_quota(api: Api, counted: None) -> None:
    rows = {r["metric"]: r for r in api.rpc("usage")}
    assert len(rows) == 7
    points = rows["points_ingested"]
    assert (points["used"], points["quota"], points["quota_source"]) == (4000, 5_000_000,
                                                                         "plan")
    assert points["used_fraction"] == pytest.approx(0.0008)
    assert points["resets_at"] > datetime.now(UTC) >= points["period_start"]
    hours = api.rpc("usage_hourly", p_metric="points_ingested")
    assert len(hours) == 24 and hours[-1]["amount"] == 4000
    assert sum(h["amount"] for h in hours) == 4000
    # Invoices and the subscription: only the caller's organization (which has none).
    assert api.get("invoices") == []
    [sub] = api.get("subscription")
    assert (sub["org"], sub["plan_id"], sub["status"]) == ("acme", "free", None)


@pytest.mark.parametrize(("fn", "args", "status", "message"), [
    ("usage", {"p_period": "2026/12"}, 400,
     'period "2026/12" is neither a month (YYYY-MM) nor a day (YYYY-MM-DD)'),
    ("usage", {"p_period": "2026-02-30"}, 400, 'period "2026-02-30" is not a date'),
    ("usage_hourly", {"p_metric": "points"}, 400, 'unknown metric "points"'),
    ("usage_hourly", {"p_metric": "points_ingested",
                      "p_from": datetime(2026, 1, 1, tzinfo=UTC),
                      "p_to": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=32)}, 400,
     "is longer than 31 days"),
    ("usage_hourly", {"p_metric": "points_ingested",
                      "p_from": datetime(2026, 1, 2, tzinfo=UTC),
                      "p_to": datetime(2026, 1, 1, tzinfo=UTC)}, 400, "must be before p_to"),
])
def test_bad_arguments_are_400_naming_them(api: Api, fn: str, args: dict[str, Any],
                                           status: int, message: str) -> None:
    with pytest.raises(ApiError) as err:
        api.rpc(fn, **args)
    assert err.value.status == status and message in err.value.message, err.value
    if "metric" in message:
        assert err.value.hint is not None and "points_ingested" in err.value.hint


def test_another_project_and_a_role_without_the_grant_are_refused(
        dsn: str, api: Api, projects: tuple[str, str], counted: None) -> None:
    a, b = projects
    with pytest.raises(ApiError) as err:
        api.rpc("usage", p_project_id=b)
    assert err.value.status == 403
    assert err.value.message.startswith("not allowed: this needs role customer or analyst or "
                                        "project_admin in project")
    reviewer = Api(dsn).as_("reviewer", project_id=a)
    with pytest.raises(ApiError) as err:
        reviewer.rpc("usage")
    assert err.value.status == 403 and "permission denied for function usage" in \
        err.value.message
    with pytest.raises(ApiError) as err:
        reviewer.get("invoices")
    assert err.value.status == 403 and "permission denied for view invoices" in \
        err.value.message
    analyst = Api(dsn).as_("analyst", project_id=a)
    assert {r["metric"]: r["used"] for r in analyst.rpc("usage")}["points_ingested"] == 4000
    with pytest.raises(ApiError):
        analyst.get("subscription")
    admin_of_b = Api(dsn).as_("project_admin", project_id=b)
    assert [i["number"] for i in admin_of_b.get("invoices")] == ["G-1"]
