"""Fixtures of the API contract tests that write: two tenants, and a customer of the first
calling through the PostgREST request model (test_api_events.py has its own, read-only
world)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.support.factories import make_project
from tests.support.postgrest import Api

Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def projects(db: Conn) -> tuple[str, str]:
    a = make_project(db, "acme", "north")
    b = make_project(db, "globex", "south")
    db.commit()
    return a, b


@pytest.fixture
def api(dsn: str, projects: tuple[str, str]) -> Api:
    return Api(dsn).as_("customer", project_id=projects[0], sub="key:sik_0123456789ab")
