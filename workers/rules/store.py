"""Ontologies in the database: load (validate, version, compile, settings), list, backfill."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from workers.db.queries import query
from workers.errors import NotFound, UserError

from .compile import CompiledRule, compile_ontology, compile_pair_rows
from .ontology import Ontology

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class LoadResult:
    """What `load` did."""

    ontology_id: int
    name: str
    version: int
    sha256: str
    created: bool
    rules: int
    settings: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"ontology_id": self.ontology_id, "name": self.name, "version": self.version,
                "sha256": self.sha256, "created": self.created, "rules": self.rules,
                "settings": self.settings}


def _first(row: Any) -> Any:
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def write_compiled(conn: Conn, project_id: str, ontology_id: int,
                   onto: Ontology) -> list[CompiledRule]:
    """Compile the ontology's rules and its pair-rows fill statement into rules.compiled and
    rules.ontologies (replacing what was there). Does not commit."""
    rules = compile_ontology(onto, ontology_id)
    conn.execute(query("rules", "delete_compiled"), {"ontology_id": ontology_id})
    for r in rules:
        conn.execute(query("rules", "insert_compiled"), {
            "ontology_id": ontology_id, "project_id": project_id, "type": r.type,
            "kind": r.kind, "position": r.position, "lookback_s": r.lookback_s,
            "sql": r.sql, "sha256": r.sha256})
    conn.execute(query("rules", "set_pair_rows_sql"), {
        "ontology_id": ontology_id, "sql": compile_pair_rows(onto, ontology_id)})
    return rules


def load(conn: Conn, project_id: str, onto: Ontology) -> LoadResult:
    """Store a version (idempotent for identical text), compile its rules, write the features
    settings for the project and make it the active version. Commits."""
    key = {"project_id": project_id, "name": onto.name, "version": onto.version}
    row = conn.execute(query("rules", "find_ontology"), key).fetchone()
    created = row is None
    if row is not None:
        sha = row["sha256"] if isinstance(row, dict) else row[1]
        if sha != onto.sha256:
            raise UserError(f"ontology {onto.name!r} version {onto.version} is already loaded "
                            "with different content; bump `version:` in the file")
        ontology_id = int(_first(row))
    else:
        ontology_id = int(_first(conn.execute(query("rules", "insert_ontology"), {
            **key, "sha256": onto.sha256, "yaml": onto.text,
            "parsed": Jsonb(onto.data)}).fetchone()))
    rules = write_compiled(conn, project_id, ontology_id, onto)
    settings = onto.features
    for skey, value in settings.items():
        conn.execute(query("rules", "put_setting"),
                     {"project_id": project_id, "key": skey, "value": Jsonb(value)})
    conn.execute(query("rules", "deactivate"),
                 {"project_id": project_id, "ontology_id": ontology_id})
    conn.execute(query("rules", "activate"), {"ontology_id": ontology_id})
    conn.commit()
    return LoadResult(ontology_id, onto.name, onto.version, onto.sha256, created, len(rules),
                      settings)


def list_ontologies(conn: Conn, project_id: str) -> list[dict[str, Any]]:
    """Every loaded version of the project with rule and candidate counts."""
    return [dict(r) for r in conn.execute(query("rules", "list_ontologies"),
                                          {"project_id": project_id}).fetchall()]


def compiled_sql(conn: Conn, project_id: str) -> list[dict[str, Any]]:
    """The active version's generated SQL per type."""
    active = conn.execute(query("rules", "active_ontology"),
                          {"project_id": project_id}).fetchone()
    if active is None:
        raise NotFound("the project has no ontology loaded; run `secinf rules load`")
    return [dict(r) for r in conn.execute(query("rules", "compiled_sql"),
                                          {"ontology_id": active["ontology_id"]}).fetchall()]


def backfill(conn: Conn, project_id: str, source: str | None = None,
             on_source: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Re-run the active rules over each source's whole history (features up to their
    newest row); upserts, so re-runs insert nothing new. Commits per source."""
    if conn.execute(query("rules", "active_ontology"),
                    {"project_id": project_id}).fetchone() is None:
        raise NotFound("the project has no ontology loaded; run `secinf rules load` first")
    sources = conn.execute(query("rules", "project_sources"),
                           {"project_id": project_id, "source": source}).fetchall()
    if source is not None and not sources:
        raise NotFound(f"no source {source!r} in the project; check `secinf pipeline status`")
    out: dict[str, int] = {}
    for s in sources:
        newest: datetime | None = _first(conn.execute(
            query("rules", "newest_feature"), {"source_id": s["source_id"]}).fetchone())
        inserted = 0
        if newest is not None:
            inserted = int(_first(conn.execute(query("rules", "run_rules"), {
                "source_id": s["source_id"], "from_ts": None,
                "to_ts": newest}).fetchone()) or 0)
        conn.commit()
        out[str(s["name"])] = inserted
        if on_source is not None:
            on_source(str(s["name"]), inserted)
    return out
