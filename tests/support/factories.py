"""Test data builders for tenancy (admin connection)."""

from __future__ import annotations

from typing import Any

import psycopg

from workers import tenancy


def make_project(db: psycopg.Connection[dict[str, Any]], org: str, name: str) -> str:
    return str(tenancy.create_project(db, org, name)["project_id"])


def make_key(db: psycopg.Connection[dict[str, Any]], project_id: str, role: str,
             expires: str | None = None) -> dict[str, Any]:
    return tenancy.create_key(db, project_id, role, expires)
