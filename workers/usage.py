"""Usage against quota and quota overrides (issue 18): the data behind `secinf usage` and
`secinf quotas`, and the numbers in words that the CLI and the app's Usage page print.

Reads go through api.usage and api.usage_hourly (sql/270_api_billing.sql), so a period is
validated and a quota computed in one place; changes through billing.set_quota
(administrators only, audited). Database errors become UserErrors naming the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from workers.db.errors import Make, wrap_db_errors
from workers.db.queries import query
from workers.errors import UserError

Conn = psycopg.Connection[dict[str, Any]]
GROUP = "usage"
WARN_AT = 0.8
"""The used fraction from which a metric is close to its quota (the API warns from here)."""
MAX_HOURS = 31 * 24
"""api.usage_hourly answers at most 31 days per call."""
_QUOTA = re.compile(r"^(\d[\d_,]*)(?:\s*(k|M|G|T|Ki|Mi|Gi|Ti))?$")
_SUFFIX = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_BLOCKS = "▁▂▃▄▅▆▇█"


# ---------------------------------------------------------------- errors
_OPERATOR: dict[str, Make | None] = {"42501": lambda f: UserError(
    f"{f.text}: quotas are changed by an operator, connected as a superuser (the "
    "database's admin login in SECINF_DSN or the local cluster's)")}


def _rows(conn: Conn, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    with wrap_db_errors(_OPERATOR, rollback=conn):
        return [dict(r) for r in conn.execute(query(GROUP, name), params).fetchall()]


# ---------------------------------------------------------------- reading
def usage(conn: Conn, project_id: str, period: str | None = None) -> list[dict[str, Any]]:
    """Every metric's use against quota in the current period, or in `period` (YYYY-MM or
    YYYY-MM-DD, UTC)."""
    return _rows(conn, "usage", {"project_id": project_id, "period": period})


def hourly(conn: Conn, project_id: str, metric: str, start: datetime, end: datetime
           ) -> list[dict[str, Any]]:
    """The metric's use per UTC hour over [start, end): every hour, 0 where none."""
    return _rows(conn, "usage_hourly", {"project_id": project_id, "metric": metric,
                                        "from": start, "to": end})


def hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hourly_range(rows: Sequence[Mapping[str, Any]], period: str | None, hours: int,
                 now: datetime | None = None) -> tuple[datetime, datetime]:
    """The hours to chart: the named period (a day, or a month: from the rows of
    api.usage for it), up to the current hour; without one, the last `hours` hours."""
    end_now = hour_of(now or datetime.now(UTC)) + timedelta(hours=1)
    if period is None:
        if not 1 <= hours <= MAX_HOURS:
            raise UserError(f"--hours {hours}: chart 1 to {MAX_HOURS} hours (31 days)")
        return end_now - timedelta(hours=hours), end_now
    span = "day" if len(period.strip()) == 10 else "month"
    row = next(r for r in rows if r["period"] == span)
    return row["period_start"], min(row["resets_at"], end_now)


def quotas(conn: Conn, project_id: str) -> list[dict[str, Any]]:
    """Per metric: the plan's quota, the project's own (who set it, when, why) and the one
    in force."""
    return _rows(conn, "quotas", {"project_id": project_id})


def metrics(conn: Conn) -> list[str]:
    return [r["metric"] for r in _rows(conn, "metrics", {})]


def require_metric(conn: Conn, metric: str) -> None:
    known = metrics(conn)
    if metric not in known:
        raise UserError(f"unknown metric {metric!r}: use one of {', '.join(known)}")


# ---------------------------------------------------------------- changing
def parse_quota(text: str) -> int | None:
    """A quota as typed: a whole number (1_000, 1,000), with an optional k, M, G, T
    (powers of 1000) or Ki, Mi, Gi, Ti (of 1024) suffix; 'unlimited' is None."""
    value = text.strip()
    if value.lower() in ("unlimited", "none"):
        return None
    m = _QUOTA.match(value)
    if not m:
        raise UserError(f"quota {text!r} is not a whole number: give N >= 0 (e.g. 5000, "
                        "10Gi, 2M) or 'unlimited'")
    return int(m.group(1).replace("_", "").replace(",", "")) * _SUFFIX[m.group(2)]


@dataclass(frozen=True)
class QuotaChange:
    metric: str
    before: int | None
    before_source: str
    quota: int | None
    source: str
    changed: bool

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "before": self.before,
                "before_source": self.before_source, "quota": self.quota,
                "quota_source": self.source, "changed": self.changed}


def set_quota(conn: Conn, project_id: str, metric: str, quota: int | None, reason: str,
              *, clear: bool = False) -> QuotaChange:
    """Set the project's own quota of a metric (None: unlimited) or, with `clear`, go back
    to the plan's. Audited with who and why; commits. Clearing a metric without a quota of
    its own changes nothing (and records nothing)."""
    require_metric(conn, metric)
    [before] = [r for r in quotas(conn, project_id) if r["metric"] == metric]
    if clear and not before["overridden"]:
        conn.rollback()
        return QuotaChange(metric, before["quota"], before["quota_source"], before["quota"],
                           before["quota_source"], changed=False)
    [row] = _rows(conn, "set_quota", {"project_id": project_id, "metric": metric,
                                      "quota": quota, "reason": reason, "clear": clear})
    conn.commit()
    after = row["quota"]
    return QuotaChange(metric, before["quota"], before["quota_source"], after["quota"],
                       after["source"], changed=True)


# ---------------------------------------------------------------- in words
def _binary(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def amount_text(value: int | float | None, unit: str) -> str:
    """An amount of a metric for people: bytes in KiB…TiB, seconds in minutes, counts with
    thousands separators."""
    if value is None:
        return "—"
    if unit == "bytes":
        return _binary(float(value))
    if unit == "seconds":
        minutes = float(value) / 60
        return f"{minutes:,.1f} min" if minutes < 100 else f"{minutes:,.0f} min"
    return f"{int(value):,}"


def quota_text(quota: int | None, unit: str) -> str:
    return "unlimited" if quota is None else amount_text(quota, unit)


def percent_text(fraction: float | None) -> str:
    if fraction is None:
        return "—"
    if math.isinf(fraction):
        return "∞"
    return f"{100 * fraction:.1f} %"


def level(fraction: float | None) -> str:
    """'over' (at or past the quota), 'near' (from 80 %), 'ok', or 'unlimited'."""
    if fraction is None:
        return "unlimited"
    if fraction >= 1:
        return "over"
    return "near" if fraction >= WARN_AT else "ok"


def utc_text(at: datetime | None) -> str:
    return "—" if at is None else f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def sparkline(values: Sequence[float], top: float | None = None) -> str:
    """One character per value, ▁ to █ against `top` (default: the largest); · for 0."""
    peak = max(values, default=0) if top is None else top
    out = []
    for v in values:
        if v <= 0 or peak <= 0:
            out.append("·")
        else:
            out.append(_BLOCKS[min(len(_BLOCKS) - 1, math.ceil(v / peak * len(_BLOCKS)) - 1)])
    return "".join(out)


@dataclass(frozen=True)
class Day:
    day: date
    line: str
    """One character per hour of the UTC day, 00:00 first; hours outside the range charted
    are blanks."""
    total: int
    peak: int
    peak_hour: datetime | None


def days(hours: Sequence[Mapping[str, Any]]) -> list[Day]:
    """The hourly rows of api.usage_hourly as one sparkline per UTC day, on one scale."""
    top = max((int(h["amount"]) for h in hours), default=0)
    by_day: dict[date, list[Mapping[str, Any]]] = {}
    for h in hours:
        by_day.setdefault(h["hour"].astimezone(UTC).date(), []).append(h)
    out = []
    for day, rows in by_day.items():
        amounts = [int(r["amount"]) for r in rows]
        peak = max(amounts)
        line = " " * rows[0]["hour"].astimezone(UTC).hour + sparkline(amounts, top)
        out.append(Day(day, line, sum(amounts), peak,
                       rows[amounts.index(peak)]["hour"] if peak > 0 else None))
    return out
