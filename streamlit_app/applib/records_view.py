"""Records page logic (no Streamlit calls): the signed-in project's retention per category,
what retention runs deleted from it, its legal holds and its erasures (tombstones).

Every call runs as the signed-in caller through the PostgREST request model (the named
queries of workers/queries/app_records.sql). Retention is readable by customers, analysts
and project admins; runs, holds and tombstones by project admins only: the database's
grants decide, asked with has_function_privilege. Changes go through the CLI or the API
(`secinf retention set`, `POST /rpc/set_legal_hold`, `POST /rpc/erase_subject`), where each
is audited with its reason. The other functions shape rows and are pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd

from workers.appdb.session import AppDB, Identity, Row, SessionEnded
from workers.db.queries import query

GROUP = "app_records"
RETENTION_COLUMNS = ["category", "kept", "from", "set by", "reason", "what"]
RUN_COLUMNS = ["run", "started (UTC)", "category", "table", "how", "cut-off (UTC)", "rows",
               "seconds"]
HOLD_COLUMNS = ["hold", "scope", "reason", "set by", "set (UTC)", "state"]
TOMBSTONE_COLUMNS = ["erasure", "actor", "tracks", "status", "rows deleted",
                     "datasets superseded", "requested by", "requested (UTC)", "reason",
                     "kept until"]
NO_RUNS = ("Retention has not deleted anything of this project yet: pg_cron runs it "
           "nightly; what expires under the settings above goes then.")
NO_HOLDS = "No legal hold: retention applies to all of the project's data."
NO_TOMBSTONES = "No erasure yet."
HOW_TO_CHANGE = ("Change retention with `secinf retention set` or `POST /rpc/set_retention`; "
                 "holds with `secinf hold` or `/rpc/set_legal_hold`; erase one actor with "
                 "`secinf erase` or `/rpc/erase_subject` (project admins; every change is "
                 "audited with its reason).")


def not_for_role(role: str) -> str:
    return (f"Your role ({role}) may not see the project's records: retention is shown to "
            "customers, analysts and project admins; holds and erasures to project admins.")


ADMIN_ONLY = "Retention runs, legal holds and erasures are shown to project admins."


def _call(db: AppDB, who: Identity, name: str, params: Mapping[str, Any] | None = None
          ) -> list[Row]:
    if who.expired():
        raise SessionEnded("signed out: your session expired, sign in again")
    return db.request(who.role, who.claims, query(GROUP, name), params, path=f"/rpc/{name}",
                      read_only=True)  # every query of this page reads


@dataclass(frozen=True)
class Access:
    retention: bool
    admin: bool


def access(db: AppDB, who: Identity) -> Access:
    [row] = _call(db, who, "access")
    return Access(bool(row["retention"]), bool(row["admin"]))


def retention(db: AppDB, who: Identity) -> list[Row]:
    return _call(db, who, "retention")


def runs(db: AppDB, who: Identity) -> list[Row]:
    return _call(db, who, "retention_runs")


def holds(db: AppDB, who: Identity) -> list[Row]:
    return _call(db, who, "legal_holds")


def tombstones(db: AppDB, who: Identity) -> list[Row]:
    return _call(db, who, "tombstones")


# ---------------------------------------------------------------- shaping
def kept_text(row: Mapping[str, Any]) -> str:
    """'2 years', '90 days' as the database writes the interval; 'forever'."""
    return "forever" if row["forever"] else str(row["keep"])


def retention_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{
        "category": r["category"], "kept": kept_text(r),
        "from": {"project": "the project's own", "plan": "the plan"}.get(r["source"], "—"),
        "set by": r["set_by"] or "", "reason": r["reason"] or "", "what": r["description"]}
        for r in rows], columns=RETENTION_COLUMNS)


def _utc(at: Any) -> str:
    return "" if at is None else f"{at:%Y-%m-%d %H:%M}"


def runs_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{
        "run": r["run_id"], "started (UTC)": _utc(r["started_at"]), "category": r["category"],
        "table": r["relation"], "how": r["method"], "cut-off (UTC)": _utc(r["cutoff"]),
        "rows": int(r["rows"]), "seconds": round(float(r["seconds"]), 2)} for r in rows],
        columns=RUN_COLUMNS)


def runs_chart(rows: Sequence[Mapping[str, Any]]) -> alt.Chart:
    """Rows deleted per run, stacked by category."""
    frame = pd.DataFrame([{"run": str(r["run_id"]), "category": r["category"],
                           "rows": int(r["rows"])} for r in rows],
                         columns=["run", "category", "rows"])
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("run:N", title="retention run", sort=None),
        y=alt.Y("sum(rows):Q", title="rows deleted"),
        color=alt.Color("category:N"),
        tooltip=["run", "category", "sum(rows)"])


def scope_text(row: Mapping[str, Any]) -> str:
    scope = f"source {row['source']}" if row["source"] else "the whole project"
    if row["from_ts"] or row["to_ts"]:
        scope += f", {_utc(row['from_ts']) or '…'} to {_utc(row['to_ts']) or '…'}"
    return scope


def holds_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{
        "hold": r["hold_id"], "scope": scope_text(r), "reason": r["reason"],
        "set by": r["set_by"], "set (UTC)": _utc(r["set_at"]),
        "state": "active" if r["active"] else
                 f"lifted {_utc(r['lifted_at'])} by {r['lifted_by']}: {r['lift_reason']}"}
        for r in rows], columns=HOLD_COLUMNS)


def active_holds_text(rows: Sequence[Mapping[str, Any]]) -> str | None:
    active = [r for r in rows if r["active"]]
    if not active:
        return None
    return (f"{len(active)} legal hold{'s' if len(active) > 1 else ''} active: retention keeps "
            "what they cover and erasure of it is refused until lifted.")


def tombstones_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{
        "erasure": r["tombstone_id"], "actor": f"{r['subject_kind']} {r['subject']}",
        "tracks": len(r["tracks"] or []), "status": r["status"],
        "rows deleted": sum(int(v) for v in (r["counts"] or {}).values()),
        "datasets superseded": ", ".join(f"{v['dataset']}@{v['version']}"
                                         for v in r["versions_superseded"] or []),
        "requested by": r["requested_by"], "requested (UTC)": _utc(r["requested_at"]),
        "reason": r["reason"], "kept until": f"{r['keep_until']:%Y-%m-%d}"} for r in rows],
        columns=TOMBSTONE_COLUMNS)
