"""The Usage page: use against quota per metric (a chart of the used fraction with the 80 %
and 100 % lines), one metric's hours, when quotas reset, and the organization's
subscription and invoices; first as pure shaping of rows, then as the people who use it
(AppTest), with usage rows and Stripe's mirror written directly as the superuser."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from applib import usage_view as uv
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from tests.app.conftest import app_test
from tests.support.factories import make_key
from workers.appdb import AppDB, Identity

Conn = psycopg.Connection[dict[str, Any]]
GIB = 2**30
T0 = datetime(2026, 11, 1, tzinfo=UTC)


# ---------------------------------------------------------------- pure shaping
def _row(metric: str, used: int, quota: int | None, unit: str = "points",
         period: str = "month", **kw: Any) -> dict[str, Any]:
    fraction = None if quota is None else (used / quota if quota else float("inf"))
    return {"metric": metric, "unit": unit, "period": period, "period_start": T0,
            "resets_at": datetime(2026, 12, 1, tzinfo=UTC), "used": used, "quota": quota,
            "quota_source": "plan" if quota is not None else "none", "used_fraction": fraction,
            **kw}


def test_usage_rows_in_words_and_the_fraction_chart() -> None:
    rows = [_row("bytes_ingested", 900 * 2**20, GIB, "bytes"),
            _row("points_ingested", 10, None),
            _row("source_seconds", 7200, 360000, "seconds"),
            _row("events_verified", 5, 0, "events")]
    frame = uv.usage_frame(rows)
    assert list(frame.columns) == uv.USAGE_COLUMNS
    first = frame.to_dict("records")[0]
    assert first == {"metric": "bytes_ingested", "used": "900.0 MiB", "quota": "1.0 GiB",
                     "used %": 87.9, "source": "plan", "period": "month from 2026-11-01",
                     "resets (UTC)": datetime(2026, 12, 1)}
    assert list(frame["quota"]) == ["1.0 GiB", "unlimited", "6,000 min", "0"]
    charted = uv.fraction_frame(rows)
    assert list(charted["metric"]) == ["bytes_ingested", "source_seconds", "events_verified"]
    assert list(charted["level"]) == ["near", "ok", "over"]
    assert charted["used_fraction"].iloc[2] == 1.5  # a used-up zero quota, drawn past 100 %
    spec = uv.fraction_chart(rows).to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "rule"]
    rules = spec["datasets"][spec["layer"][1]["data"]["name"]]
    assert [r["at"] for r in rules] == [0.8, 1.0]
    assert uv.near_quota(rows) == ["bytes_ingested", "events_verified"]
    warning = uv.warning_text(rows)
    assert warning is not None and warning.startswith(
        "At 80 % or more of the quota: bytes_ingested (87.9 %, resets 2026-12-01 00:00 UTC), "
        "events_verified (∞, resets")
    assert uv.warning_text(rows[1:3]) is None
    day = _row("api_requests", 1, 10, "requests", "day",
               resets_at=datetime(2026, 11, 8, tzinfo=UTC))
    assert uv.resets_text([*rows, day]) == ("Monthly quotas reset at 2026-12-01 00:00 UTC · "
                                            "Daily quotas reset at 2026-11-08 00:00 UTC")


def test_periods_hours_money_invoices_and_the_subscription() -> None:
    assert uv.period_choices(date(2026, 2, 10), months=3) == ["current", "2026-01", "2025-12",
                                                               "2025-11"]
    assert [uv.period_param(c) for c in ("current", "2026-01")] == [None, "2026-01"]
    hours = [{"hour": T0 + timedelta(hours=h), "amount": h * 100} for h in range(3)]
    assert uv.hourly_text(hours, "bytes") == ("300 B from 2026-11-01 00:00 to 2026-11-01 "
                                              "02:59 UTC.")
    assert uv.hourly_chart(hours, "bytes_ingested", "bytes").to_dict()["mark"]["type"] == "bar"
    assert [uv.money(a, c) for a, c in ((4900, "eur"), (123456, "usd"), (500, "jpy"),
                                        (None, "eur"))] == [
        "49.00 EUR", "1,234.56 USD", "500 JPY", "—"]
    frame = uv.invoices_frame([
        {"invoice_id": "in_1", "number": "A-0002", "status": "open", "currency": "eur",
         "amount_due": 4900, "amount_paid": 0, "period_start": T0,
         "period_end": datetime(2026, 12, 1, tzinfo=UTC),
         "hosted_invoice_url": "https://invoice.stripe.com/i/1"},
        {"invoice_id": "in_2", "number": None, "status": "draft", "currency": "eur",
         "amount_due": 0, "amount_paid": 0, "period_start": None, "period_end": None,
         "hosted_invoice_url": None}])
    assert list(frame.columns) == uv.INVOICE_COLUMNS
    assert frame.to_dict("records")[0] == {
        "number": "A-0002", "status": "open", "amount due": "49.00 EUR",
        "amount paid": "0.00 EUR", "period": "2026-11-01 to 2026-12-01",
        "invoice": "https://invoice.stripe.com/i/1"}
    assert frame.to_dict("records")[1]["number"] == "in_2"
    assert frame.to_dict("records")[1]["period"] == "—"
    sub = {"org": "acme", "plan_id": "team", "subscription_id": "sub_1", "status": "active",
           "subscribed_plan_id": "team", "current_period_start": T0,
           "current_period_end": datetime(2026, 12, 1, tzinfo=UTC),
           "cancel_at_period_end": False}
    assert uv.subscription_text([sub]) == ("**acme** is on the **team** plan: subscription "
                                           "active (team), renews 2026-12-01.")
    assert uv.subscription_text([{**sub, "cancel_at_period_end": True}]).endswith(
        "ends 2026-12-01.")
    assert uv.subscription_text([{**sub, "subscription_id": None}]) == (
        "**acme** is on the **team** plan, without a Stripe subscription.")


# ---------------------------------------------------------------- as the people
def _who(app_db: AppDB, db: Conn, project: str, role: str) -> Identity:
    return app_db.sign_in_key(str(make_key(db, project, role)["api_key"]))


def _org(db: Conn, project: str) -> str:
    row = db.execute("SELECT org_id::text AS o FROM core.projects WHERE project_id = %s",
                     (project,)).fetchone()
    assert row is not None
    return str(row["o"])


def _bill(db: Conn, project: str, tag: str) -> None:
    """A subscription and two invoices of the project's organization, as Stripe's webhook
    mirrors them."""
    org = _org(db, project)
    db.execute("INSERT INTO billing.subscriptions (stripe_subscription_id, org_id,"
               " stripe_customer_id, status, plan_id, current_period_start,"
               " current_period_end, stripe_updated)"
               " VALUES (%s, %s, %s, 'active', 'team', date_trunc('month', now()),"
               " date_trunc('month', now()) + interval '1 month', now())",
               (f"sub_{tag}", org, f"cus_{tag}"))
    for n, (status, due, paid, months) in enumerate(
            (("paid", 4900, 4900, 2), ("open", 5300, 0, 1)), start=1):
        db.execute("INSERT INTO billing.invoices (stripe_invoice_id, org_id,"
                   " stripe_subscription_id, number, status, currency, amount_due,"
                   " amount_paid, period_start, period_end, hosted_invoice_url, stripe_updated)"
                   " VALUES (%s, %s, %s, %s, %s, 'eur', %s, %s,"
                   " date_trunc('month', now()) - %s * interval '1 month',"
                   " date_trunc('month', now()) - (%s - 1) * interval '1 month', %s, now())",
                   (f"in_{tag}{n}", org, f"sub_{tag}", f"{tag.upper()}-000{n}", status, due,
                    paid, months, months, f"https://invoice.stripe.com/i/{tag}{n}"))
    db.commit()


@pytest.fixture
def no_usage(db: Conn) -> None:
    """Forget what the template's pipeline run counted: each test writes its own rows."""
    db.execute("DELETE FROM billing.usage")
    db.commit()


def _use(db: Conn, project: str, metric: str, amount: int, at: datetime | None = None
         ) -> None:
    db.execute("INSERT INTO billing.usage (project_id, metric, hour, amount)"
               " VALUES (%s, %s, billing.hour_of(coalesce(%s, now())), %s)",
               (project, metric, at, amount))
    db.commit()


def _last_month(db: Conn) -> datetime:
    row = db.execute("SELECT date_trunc('month', now()) - interval '20 days' AS at").fetchone()
    assert row is not None
    at: datetime = row["at"]
    return at


def _charts(at: Any) -> list[dict[str, Any]]:
    """Each Altair chart's Vega-Lite spec."""
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def _hours(at: Any) -> list[dict[str, Any]]:
    """The rows of the per-hour chart (Streamlit ships a chart's data as Arrow apart)."""
    chart = at.get("vega_lite_chart")[1]
    [data] = chart.proto.datasets
    rows: list[dict[str, Any]] = convert_arrow_bytes_to_pandas_df(data.data.data).to_dict(
        "records")
    return rows


@pytest.mark.db
def test_a_customer_sees_usage_against_quota_hours_and_invoices(
        app_db: AppDB, db: Conn, project: str, other_project: str, no_usage: None) -> None:
    _use(db, project, "bytes_ingested", 900 * 2**20)        # free plan: 1 GiB a month
    _use(db, project, "api_requests", 1234)
    _use(db, project, "points_ingested", 4321, _last_month(db))
    _bill(db, project, "a")
    _bill(db, other_project, "b")
    at = app_test("pages/8_Usage.py", _who(app_db, db, project, "customer")).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Usage"
    assert at.selectbox(key="u_period").value == "current"
    [warning] = [w.value for w in at.warning]
    assert warning.startswith("At 80 % or more of the quota: bytes_ingested (87.9 %, resets ")
    table = at.dataframe[0].value
    by_metric = {r["metric"]: r for r in table.to_dict("records")}
    assert by_metric["bytes_ingested"]["used"] == "900.0 MiB"
    assert by_metric["bytes_ingested"]["used %"] == 87.9
    assert by_metric["points_ingested"]["used"] == "0"  # last month's is not this month's
    assert by_metric["api_requests"]["quota"] == "10,000"
    fraction, _ = _charts(at)
    assert [layer["mark"]["type"] for layer in fraction["layer"]] == ["bar", "rule"]
    assert any("Monthly quotas reset at " in c.value for c in at.caption)

    # The hours of api_requests: the last 24, this hour's 1234.
    at.selectbox(key="u_metric").set_value("api_requests").run()
    assert not at.exception and not at.error
    values = _hours(at)
    assert len(values) == 24 and values[-1]["amount"] == 1234
    assert any(c.value.startswith("1,234 from ") for c in at.caption)

    # Subscription and the organization's invoices, newest first; none of globex's.
    assert any("is on the **free** plan: subscription active (team), renews " in m.value
               for m in at.markdown)
    invoices = at.dataframe[1].value
    assert list(invoices["number"]) == ["A-0002", "A-0001"]
    assert list(invoices["amount due"]) == ["53.00 EUR", "49.00 EUR"]
    assert list(invoices["invoice"]) == ["https://invoice.stripe.com/i/a2",
                                         "https://invoice.stripe.com/i/a1"]
    assert "B-0001" not in str(invoices)

    # Last month: its points, and its hours.
    at.selectbox(key="u_period").set_value(uv.period_choices()[1]).run()
    assert not at.exception and not at.error
    past = {r["metric"]: r for r in at.dataframe[0].value.to_dict("records")}
    assert past["points_ingested"]["used"] == "4,321"
    assert past["bytes_ingested"]["used"] == "0 B" and not at.warning
    at.selectbox(key="u_metric").set_value("points_ingested").run()
    values = _hours(at)
    assert len(values) in (28 * 24, 29 * 24, 30 * 24, 31 * 24)
    assert sum(v["amount"] for v in values) == 4321


@pytest.mark.db
def test_roles_see_what_their_grants_allow(app_db: AppDB, db: Conn, project: str,
                                          no_usage: None) -> None:
    _use(db, project, "points_ingested", 10)
    reviewer = app_test("pages/8_Usage.py", _who(app_db, db, project, "reviewer")).run()
    assert not reviewer.exception and not reviewer.error
    assert [i.value for i in reviewer.info] == [uv.not_for_role("reviewer")]
    assert not reviewer.dataframe and not _charts(reviewer)
    # Analysts read usage (as from SQL), not the organization's money.
    analyst = app_test("pages/8_Usage.py", _who(app_db, db, project, "analyst")).run()
    assert not analyst.exception and not analyst.error
    assert len(analyst.dataframe) == 1 and len(_charts(analyst)) == 2
    assert uv.INVOICES_NOT_FOR_ROLE in [c.value for c in analyst.caption]
    # A project admin sees both; an organization without invoices says so.
    admin = app_test("pages/8_Usage.py", _who(app_db, db, project, "project_admin")).run()
    assert not admin.exception and not admin.error
    assert [i.value for i in admin.info] == [uv.NO_INVOICES]
    assert any("without a Stripe subscription" in m.value for m in admin.markdown)
