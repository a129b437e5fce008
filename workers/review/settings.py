"""A project's review settings (review.settings): second-opinion share and auto-accept
thresholds. Read and changed on an admin connection (`secinf review settings`)."""

from __future__ import annotations

from typing import Any

import psycopg

from workers import tenancy
from workers.db.queries import query
from workers.errors import UserError

Conn = psycopg.Connection[Any]
OFF = "off"


def _threshold(name: str, value: str | None) -> tuple[bool, float | None]:
    """(given, value): 'off' switches the path off (NULL); a number must lie in [0, 1]."""
    if value is None:
        return False, None
    if value.strip().lower() == OFF:
        return True, None
    try:
        v = float(value)
    except ValueError:
        raise UserError(f"{name} {value!r}: give a score between 0 and 1, or 'off'") from None
    if not 0.0 <= v <= 1.0:
        raise UserError(f"{name} {value}: give a score between 0 and 1, or 'off'")
    return True, v


def update(conn: Conn, project_ref: str, *, second_opinion_share: float | None = None,
           auto_accept_model: str | None = None, auto_accept_rule: str | None = None
           ) -> dict[str, Any]:
    """Change the given settings (others stay); returns the project's settings after."""
    project_id = tenancy.resolve_project(conn, project_ref)
    if second_opinion_share is not None and not 0.0 <= second_opinion_share <= 1.0:
        raise UserError(f"--second-opinion-share {second_opinion_share}: give a share "
                        "between 0 and 1 (0.2 routes one first decision in five)")
    model_given, model = _threshold("--auto-accept-model", auto_accept_model)
    rule_given, rule = _threshold("--auto-accept-rule", auto_accept_rule)
    conn.execute(query("review", "ensure_settings"), {"project_id": project_id})
    row = conn.execute(query("review", "update_settings"), {
        "project_id": project_id, "share": second_opinion_share,
        "model_given": model_given, "model": model, "rule_given": rule_given, "rule": rule,
    }).fetchone()
    conn.commit()
    assert row is not None
    return dict(row)
