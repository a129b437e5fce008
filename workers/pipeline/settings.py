"""`secinf pipeline settings`: show and change the pipeline's settings per project or
source.

Three levels, the nearest wins: the defaults (`pipeline.settings`, project_id NULL), the
project's rows, and a source's own (`ingest.sources.attributes -> 'settings'`). A source
level exists only for the keys a stage reads per source through
`pipeline.source_setting_float` (sql/450_pipeline.sql): SOURCE_KEYS. Changing a setting does
not recompute stored features; `recompute` deletes the sources' `features.watermarks` so the
next tick runs every stage over their whole history again.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from workers.db.errors import wrap_db_errors
from workers.db.queries import query
from workers.errors import NotFound, UserError

Conn = psycopg.Connection[dict[str, Any]]

SOURCE_KEYS = ("smoothing_s",)
"""Keys a stage reads per source (kinematics and the tick's overlap read `smoothing_s`
through pipeline.source_setting_float); every other key is per project only."""
RANGES: dict[str, tuple[float, float]] = {"smoothing_s": (0.0, 10.0)}
"""Allowed [low, high] of a numeric key; other numeric keys must be ≥ 0."""
NO_RECOMPUTE_KEYS = ("settle_s", "tick_max_span_s", "jobs_in_flight_max",
                     "points_in_flight_max")
"""Keys that change when ticks run or how much work the API accepts (sql/230_api_caps.sql),
not what the stages compute."""
DEFAULT_WORD = "default"
"""`KEY=default` removes the override at the level being set."""


@dataclass
class SettingsChange:
    """What `apply` did."""

    project_id: str
    source: str | None
    project_ref: str
    """How the caller named the project (for the commands in `notes`)."""
    changed: dict[str, Any] = field(default_factory=dict)
    """key → new value at the level set (None: the override was removed)."""
    recomputed_sources: int | None = None
    """Sources whose watermarks were deleted (None: not asked)."""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"project_id": self.project_id, "source": self.source,
                "level": "source" if self.source else "project", "changed": self.changed,
                "recomputed_sources": self.recomputed_sources, "notes": self.notes}


def _source(conn: Conn, project_id: str, ref: str) -> dict[str, Any]:
    row = conn.execute(query("pipeline", "settings_source"),
                       {"project_id": project_id, "source": ref}).fetchone()
    if row is None:
        raise NotFound(f"--source {ref}: no such source in the project; list them with "
                       "`secinf pipeline status`")
    return dict(row)


def show(conn: Conn, project_id: str, source: str | None = None) -> list[dict[str, Any]]:
    """Per key: the default, the project's value, the source's (with `source`) and the
    effective one (JSON values; None where a level does not set it)."""
    src = _source(conn, project_id, source) if source else None
    own = (src or {}).get("settings") or {}
    rows = []
    for r in conn.execute(query("pipeline", "settings_levels"),
                          {"project_id": project_id}).fetchall():
        key = r["key"]
        row: dict[str, Any] = {"key": key, "default": r["default_value"],
                               "project": r["project_value"]}
        effective = r["project_value"] if r["has_project"] else r["default_value"]
        if src is not None:
            row["source"] = own.get(key) if key in SOURCE_KEYS else None
            if key in SOURCE_KEYS and key in own:
                effective = own[key]
        row["effective"] = effective
        rows.append(row)
    conn.rollback()
    return rows


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """`KEY=VALUE` words → {key: raw value}; a malformed word is a UserError."""
    out: dict[str, str] = {}
    for word in pairs:
        key, sep, value = word.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise UserError(f"{word!r}: write KEY=VALUE, e.g. smoothing_s=0.5 (or "
                            f"smoothing_s={DEFAULT_WORD} to remove an override)")
        out[key] = value.strip()
    return out


def _value(key: str, raw: str, default: Any) -> Any:
    """The JSON value of `raw` for `key`, checked against the default's type and RANGES."""
    if raw == DEFAULT_WORD:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    example = f"e.g. {key}={json.dumps(default)}" if default is not None else ""
    if default is None and value is None:
        return value
    numeric = isinstance(default, int | float) and not isinstance(default, bool)
    if numeric or default is None:
        if not isinstance(value, int | float) or isinstance(value, bool) \
                or not math.isfinite(value):
            raise UserError(f"{key}={raw}: not a number; {example or 'give a number'}")
        low, high = RANGES.get(key, (0.0, math.inf))
        if not low <= value <= high:
            bound = f"{low:g} to {high:g}" if math.isfinite(high) else f"at least {low:g}"
            raise UserError(f"{key}={raw}: out of range ({bound})")
        return value
    if type(value) is not type(default):
        raise UserError(f"{key}={raw}: expected a {type(default).__name__}; {example}")
    return value


def apply(conn: Conn, project_id: str, values: dict[str, str], source: str | None = None,
          recompute: bool = False, project_ref: str | None = None) -> SettingsChange:
    """Validate and store `values` ({key: raw}) for the project, or for one source; with
    `recompute` delete the watermarks of that source (else of every source of the
    project). One transaction; commits."""
    src = _source(conn, project_id, source) if source else None
    known = {r["key"]: r["default_value"] for r in conn.execute(
        query("pipeline", "settings_levels"), {"project_id": project_id}).fetchall()
        if r["has_default"]}
    change = SettingsChange(project_id, src["name"] if src else None,
                            project_ref or project_id)
    parsed: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in known:
            raise UserError(f"{key}: no such pipeline setting; the keys are "
                            f"{', '.join(sorted(known))}")
        if src is not None and key not in SOURCE_KEYS:
            raise UserError(f"{key} cannot be set per source: the stages read only "
                            f"{', '.join(SOURCE_KEYS)} per source; drop --source to set "
                            f"{key} for the whole project")
        parsed[key] = _value(key, raw, known[key])
    with wrap_db_errors(context="cannot store the settings: ", rollback=conn):
        for key, value in parsed.items():
            if src is not None:
                name = "put_source_setting" if value is not None else "delete_source_setting"
                conn.execute(query("pipeline", name), {"source_id": src["source_id"],
                                                       "key": key, "value": Jsonb(value)})
            elif value is not None:
                conn.execute(query("pipeline", "put_project_setting"),
                             {"project_id": project_id, "key": key, "value": Jsonb(value)})
            else:
                conn.execute(query("pipeline", "delete_project_setting"),
                             {"project_id": project_id, "key": key})
            change.changed[key] = value
        if recompute:
            change.recomputed_sources = len({r["source_id"] for r in conn.execute(
                query("pipeline", "delete_watermarks"),
                {"project_id": project_id,
                 "source_id": src["source_id"] if src else None}).fetchall()})
        conn.commit()
    change.notes = _notes(change, [k for k in parsed if k not in NO_RECOMPUTE_KEYS], recompute)
    return change


def _notes(change: SettingsChange, feature_keys: list[str], recompute: bool) -> list[str]:
    where = f"source {change.source}" if change.source else "the project's sources"
    scope = f" --source {change.source}" if change.source else ""
    if recompute:
        return [f"the next tick recomputes every stage of {where} from the start "
                f"({change.recomputed_sources} source(s) reset); candidates are upserted, so "
                "unchanged ones stay as they are and ones whose span moves with the new "
                "setting are added beside the old"]
    if feature_keys:
        return [f"stored features of {where} are not recomputed: {', '.join(feature_keys)} "
                "applies to data the pipeline processes from now on; run "
                f"`secinf pipeline settings -p {change.project_ref}{scope} --recompute` to redo "
                "them"]
    return []


__all__ = ["SOURCE_KEYS", "SettingsChange", "apply", "parse_assignments", "show"]
