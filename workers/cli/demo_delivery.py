"""The delivery half of `secinf demo`: verified events, analytics, a dataset version, and
one query through the API the way PostgREST runs it.

Auto-accept (events.promote) turns the demo's confidently scored candidates into events;
the analytics views are refreshed; a dataset version is published (or, when nothing
changed since the last published one, that version is reported again); a customer's API
key is exchanged for claims and `api.query_events` runs as that customer.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from workers.appdb.session import AppDB
from workers.datasets import GateConfig, catalog
from workers.datasets.export import ExportRequest, export
from workers.review import settings as review_settings

EVENTS_BY_SOURCE = """
SELECT type, count(*) FILTER (WHERE source = 'model') AS model,
       count(*) FILTER (WHERE source = 'rule') AS rule,
       count(*) FILTER (WHERE source = 'human') AS human, count(*) AS events
FROM events.events WHERE project_id = %(p)s GROUP BY type ORDER BY type
"""
# How many verified events the project has and when the newest change to them was: the demo
# publishes a new version only when they changed since the last published one, so a second
# `make demo` adds nothing.
EVENTS_STATE = """
SELECT count(*) AS events, max(greatest(created_at, updated_at)) AS changed_at
FROM events.events WHERE project_id = %(p)s
"""
API_QUERY = ("SELECT type, actors::text AS actors, to_char(start_ts, 'HH24:MI:SS.MS') AS start,"
             " round(duration_s::numeric, 1) AS seconds,"
             " round(confidence::numeric, 3) AS confidence, verification, source_name"
             " FROM api.query_events(p_limit => 5)")
CURL_EXAMPLE = (
    "curl -s -X POST localhost:3000/rpc/exchange_key -H 'Content-Type: application/json' "
    "-d '{{\"api_key\": \"{key}\"}}'   # → token\n"
    "  curl -s 'localhost:3000/rpc/query_events?p_limit=5' -H \"Authorization: Bearer $TOKEN\""
    "   (PostgREST: docker/README.md)")


DEMO_AUTO_ACCEPT_MODEL = "0.8"
"""The demo's small model (trained in a minute on first run) is less confident than a full
`secinf train` model, so the demo project auto-accepts from 0.8 instead of the default
0.95; what stays below goes to the review queue."""


def verify_events(conn: Any, ref: str, project_id: str) -> list[dict[str, Any]]:
    """Auto-accept above the project's thresholds (idempotent); events per type and source."""
    review_settings.update(conn, ref, auto_accept_model=DEMO_AUTO_ACCEPT_MODEL)
    conn.execute("SELECT events.promote(%s)", (project_id,))
    conn.commit()
    return [dict(r) for r in conn.execute(EVENTS_BY_SOURCE, {"p": project_id}).fetchall()]


def refresh_analytics(conn: Any) -> float:
    """Refresh every analytics view now (the cron job does it every 5 minutes); ms taken."""
    rows = conn.execute("SELECT ms FROM analytics.refresh(false)").fetchall()
    conn.commit()
    return float(sum(float(r["ms"]) for r in rows))


def publish_dataset(conn: Any, ref: str, project_id: str) -> dict[str, Any]:
    """Publish the next dataset version, unless the newest published one already holds
    exactly the project's current verified events (then that one is reported again).

    The demo scene is one source of a few minutes, so the gates are relaxed to what one
    scene can meet (one example per type, any class share); `secinf export` keeps the
    defaults (docs/datasets.md)."""
    state = conn.execute(EVENTS_STATE, {"p": project_id}).fetchone()
    conn.commit()
    if not state or state["events"] == 0:
        return {"version": None, "status": "skipped", "unchanged": True, "events": 0,
                "failed_gates": [], "files": [], "bytes": None, "path": None}
    published = [v for v in catalog.list_versions(conn, ref) if v["status"] == "published"]
    conn.commit()
    if published:
        newest = published[0]
        if (state["changed_at"] <= newest["published_at"]
                and state["events"] == newest["events"]):
            return {"version": newest["version"], "status": "published", "unchanged": True,
                    "events": newest["events"], "failed_gates": [], "files": [],
                    "bytes": None, "path": None}
    gates = GateConfig(min_per_type=1, max_class_share=1.0)
    result = export(conn, ExportRequest(project=ref, gates=gates))
    return result.as_dict() | {"unchanged": False}


def api_sample(db: AppDB, customer_key: str) -> list[dict[str, Any]]:
    """`api.query_events` as the customer whose key this is (PostgREST's request model)."""
    ident = db.sign_in_key(customer_key)
    rows = db.request(ident.role, ident.claims, sql.SQL(API_QUERY), path="/rpc/query_events")
    return [dict(r) for r in rows]
