"""Usage page logic (no Streamlit calls): the signed-in project's use against quota per
metric, one metric's hours, and the organization's invoices and subscription.

Every call runs as the signed-in caller through the PostgREST request model (the named
queries of workers/queries/app_usage.sql): api.usage and api.usage_hourly for the
project, api.invoices and api.subscription for its organization. Who may read what is the
database's grant, asked with has_*_privilege, never a list kept here. The other functions
shape rows and are pure; numbers in words come from workers.usage, as the CLI prints them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import altair as alt
import pandas as pd

from workers import usage as words
from workers.appdb.session import AppDB, Identity, Row, SessionEnded
from workers.db.queries import query

GROUP = "app_usage"
CURRENT = "current"
HOURS = {"last 24 hours": 24, "last 48 hours": 48, "last 7 days": 168, "last 31 days": 744}
USAGE_COLUMNS = ["metric", "used", "quota", "used %", "source", "period", "resets (UTC)"]
INVOICE_COLUMNS = ["number", "status", "amount due", "amount paid", "period", "invoice"]
NO_INVOICES = ("No invoice yet: Stripe's invoices of your organization appear here once "
               "its subscription bills (the webhook mirrors them).")
LEVEL_COLORS = {"ok": "#4c78a8", "near": "#f2a93b", "over": "#d62728"}
# Stripe's zero-decimal currencies: amounts are whole units, not cents.
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "isk", "jpy", "kmf", "krw", "mga",
                          "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"})


def not_for_role(role: str) -> str:
    """The message for a role that may read neither usage nor invoices."""
    return (f"Your role ({role}) may not see the project's usage or invoices: usage is "
            "granted to customers, analysts and project admins, invoices to customers and "
            "project admins. Ask a project admin for a key with one of those roles.")


INVOICES_NOT_FOR_ROLE = ("Invoices and the subscription are for customers and project "
                         "admins of the organization.")


# ---------------------------------------------------------------- reading
def _call(db: AppDB, who: Identity, name: str, params: Mapping[str, Any] | None = None
          ) -> list[Row]:
    if who.expired():
        raise SessionEnded("signed out: your session expired, sign in again")
    return db.request(who.role, who.claims, query(GROUP, name), params, path=f"/rpc/{name}",
                      read_only=True)  # every query of this page reads


@dataclass(frozen=True)
class Access:
    usage: bool
    invoices: bool


def access(db: AppDB, who: Identity) -> Access:
    """What the caller's role may read (the database's grants)."""
    [row] = _call(db, who, "access")
    return Access(bool(row["usage"]), bool(row["invoices"]))


def usage(db: AppDB, who: Identity, period: str | None = None) -> list[Row]:
    return _call(db, who, "usage", {"period": period})


def hourly(db: AppDB, who: Identity, metric: str, start: datetime, end: datetime
           ) -> list[Row]:
    return _call(db, who, "usage_hourly", {"metric": metric, "from": start, "to": end})


def invoices(db: AppDB, who: Identity) -> list[Row]:
    return _call(db, who, "invoices")


def subscription(db: AppDB, who: Identity) -> list[Row]:
    return _call(db, who, "subscription")


# ---------------------------------------------------------------- periods
def period_choices(today: date | None = None, months: int = 12) -> list[str]:
    """'current', then the previous `months` months as YYYY-MM, newest first."""
    day = today or datetime.now(UTC).date()
    out = [CURRENT]
    year, month = day.year, day.month
    for _ in range(months):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        out.append(f"{year:04d}-{month:02d}")
    return out


def period_param(choice: str) -> str | None:
    return None if choice == CURRENT else choice


# ---------------------------------------------------------------- shaping
def _utc(ts: Any) -> datetime | None:
    if not isinstance(ts, datetime):
        return None
    return ts.astimezone(UTC).replace(tzinfo=None)


def _percent(fraction: Any) -> float | None:
    if fraction is None:
        return None
    return round(100 * float(fraction), 1)


def usage_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per metric: use and quota in words, the used percentage, when it resets."""
    return pd.DataFrame.from_records(
        [{"metric": r["metric"], "used": words.amount_text(r["used"], r["unit"]),
          "quota": words.quota_text(r["quota"], r["unit"]),
          "used %": _percent(r["used_fraction"]), "source": r["quota_source"],
          "period": f"{r['period']} from {r['period_start']:%Y-%m-%d}",
          "resets (UTC)": _utc(r["resets_at"])} for r in rows],
        columns=USAGE_COLUMNS)


def near_quota(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metrics at 80 % of their quota or more."""
    return [r["metric"] for r in rows if words.level(r["used_fraction"]) in ("near", "over")]


def warning_text(rows: Sequence[Mapping[str, Any]]) -> str | None:
    near = [r for r in rows if r["metric"] in near_quota(rows)]
    if not near:
        return None
    parts = ", ".join(f"{r['metric']} ({words.percent_text(r['used_fraction'])}, resets "
                      f"{words.utc_text(r['resets_at'])})" for r in near)
    return (f"At 80 % or more of the quota: {parts}. Work past a quota is refused until it "
            "resets; upgrade the plan or ask an operator to raise it.")


def resets_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """When the quotas of each period reset, in one line."""
    by_period = {r["period"]: r["resets_at"] for r in rows}
    return " · ".join(f"{'Monthly' if p == 'month' else 'Daily'} quotas reset at "
                      f"{words.utc_text(at)}" for p, at in sorted(by_period.items(),
                                                                  reverse=True))


def fraction_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The metrics with a quota: used fraction (∞ shown as 1.5), level, words for tooltips."""
    return pd.DataFrame.from_records(
        [{"metric": r["metric"],
          "used_fraction": min(float(r["used_fraction"]), 1.5),
          "level": words.level(r["used_fraction"]),
          "used": words.amount_text(r["used"], r["unit"]),
          "quota": words.quota_text(r["quota"], r["unit"]),
          "percent": words.percent_text(r["used_fraction"])}
         for r in rows if r["used_fraction"] is not None],
        columns=["metric", "used_fraction", "level", "used", "quota", "percent"])


def fraction_chart(rows: Sequence[Mapping[str, Any]]) -> alt.LayerChart:
    """Horizontal bars of used fraction per metric, with rules at 80 % and 100 %."""
    frame = fraction_frame(rows)
    bars = (alt.Chart(frame).mark_bar()
            .encode(x=alt.X("used_fraction:Q", title="used of quota",
                            axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1.5])),
                    y=alt.Y("metric:N", title=None, sort=None),
                    color=alt.Color("level:N", title=None,
                                    scale=alt.Scale(domain=list(LEVEL_COLORS),
                                                    range=list(LEVEL_COLORS.values()))),
                    tooltip=["metric", "used", "quota", "percent"]))
    lines = pd.DataFrame({"at": [0.8, 1.0], "limit": ["80 % (warning)", "100 % (refused)"]})
    rules = (alt.Chart(lines).mark_rule(strokeDash=[4, 3])
             .encode(x="at:Q", color=alt.value("#555"), tooltip=["limit"]))
    chart: alt.LayerChart = bars + rules
    return chart


def hourly_frame(hours: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [{"hour": _utc(h["hour"]), "amount": int(h["amount"])} for h in hours],
        columns=["hour", "amount"])


def hourly_chart(hours: Sequence[Mapping[str, Any]], metric: str, unit: str) -> alt.Chart:
    """Bars per UTC hour of one metric."""
    chart: alt.Chart = (alt.Chart(hourly_frame(hours)).mark_bar()
                        .encode(x=alt.X("hour:T", title="hour (UTC)",
                                        scale=alt.Scale(type="utc")),
                                y=alt.Y("amount:Q", title=f"{metric} ({unit})"),
                                tooltip=[alt.Tooltip("hour:T", format="%Y-%m-%d %H:00"),
                                         "amount:Q"]))
    return chart


def hourly_text(hours: Sequence[Mapping[str, Any]], unit: str) -> str:
    total = sum(int(h["amount"]) for h in hours)
    if not hours:
        return "No hours in this range."
    return (f"{words.amount_text(total, unit)} from {_utc(hours[0]['hour']):%Y-%m-%d %H:00} "
            f"to {_utc(hours[-1]['hour']):%Y-%m-%d %H:59} UTC.")


def money(amount: Any, currency: str) -> str:
    """An amount in the currency's smallest unit, in words: 4900 eur → '49.00 EUR'."""
    if amount is None:
        return "—"
    if currency.lower() in ZERO_DECIMAL:
        return f"{int(amount):,} {currency.upper()}"
    return f"{int(amount) / 100:,.2f} {currency.upper()}"


def _day(ts: Any) -> str:
    return "…" if not isinstance(ts, datetime) else f"{ts.astimezone(UTC):%Y-%m-%d}"


def invoices_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [{"number": r["number"] or r["invoice_id"], "status": r["status"],
          "amount due": money(r["amount_due"], r["currency"]),
          "amount paid": money(r["amount_paid"], r["currency"]),
          "period": (f"{_day(r['period_start'])} to {_day(r['period_end'])}"
                     if r["period_start"] or r["period_end"] else "—"),
          "invoice": r["hosted_invoice_url"]} for r in rows],
        columns=INVOICE_COLUMNS)


def subscription_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The organization's plan and its subscription's state, in one line each."""
    lines = []
    for r in rows:
        head = f"**{r['org']}** is on the **{r['plan_id']}** plan"
        if r["subscription_id"] is None:
            lines.append(f"{head}, without a Stripe subscription.")
            continue
        end = _day(r["current_period_end"])
        then = (f"ends {end}" if r["cancel_at_period_end"] else f"renews {end}"
                ) if r["current_period_end"] else "no period yet"
        lines.append(f"{head}: subscription {r['status']} "
                     f"({r['subscribed_plan_id'] or 'unknown plan'}), {then}.")
    return "\n\n".join(lines) or "No organization."
