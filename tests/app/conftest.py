"""Fixtures of the review app's tests.

Each database test gets a fresh copy of one populated template, built once per session from
the suite's migrated template: two projects (acme/north, globex/south) after the real
pipeline ran over a short simulated scene for each. Copying it costs a fraction of a second;
running the pipeline per test would cost seconds.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from pytest_postgresql.janitor import DatabaseJanitor

from tests.support.factories import make_person_key, make_project
from tests.support.tenant_data import populate_pipeline
from workers.appdb import AppDB, Identity
from workers.appdb.session import authenticator_conninfo
from workers.settings import load_settings

APP_DIR = Path(__file__).resolve().parents[2] / "streamlit_app"
# `streamlit run` puts the app's folder on sys.path; AppTest does not, so the tests do.
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

Conn = psycopg.Connection[dict[str, Any]]


def _janitor(server: Any, dbname: str, template: str) -> DatabaseJanitor:
    return DatabaseJanitor(user=server.user, host=server.host, port=server.port,
                           dbname=dbname, template_dbname=template, password=server.password)


def _conninfo(server: Any, dbname: str) -> str:
    return make_conninfo(host=server.host, port=server.port, user=server.user, dbname=dbname,
                         password=server.password or None)


@pytest.fixture(scope="session")
def app_template(postgresql_server: Any, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    """A database with acme/north and globex/south, each through the real pipeline."""
    name = f"{postgresql_server.dbname}_app"[:63]
    tmp = tmp_path_factory.mktemp("app-scenes")
    with _janitor(postgresql_server, name, postgresql_server.template_dbname):
        with psycopg.connect(_conninfo(postgresql_server, name), row_factory=dict_row) as db:
            for org, slug, tag in (("acme", "north", "a"), ("globex", "south", "b")):
                populate_pipeline(db, make_project(db, org, slug), tag, tmp)
        yield name


@pytest.fixture
def dsn(postgresql_server: Any, app_template: str) -> Iterator[str]:
    """Conninfo (admin) of this test's fresh copy of the populated template."""
    name = f"{app_template}_{uuid.uuid4().hex[:8]}"[:63]
    with _janitor(postgresql_server, name, app_template):
        yield _conninfo(postgresql_server, name)


@pytest.fixture
def secinf_env(secinf_env: str) -> Iterator[str]:
    """SECINF_DSN for the app; afterwards, close the pools AppTest's pages cached
    (st.cache_resource), before the database goes."""
    yield secinf_env
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def app_db(secinf_env: str) -> Iterator[AppDB]:
    """The app's pool of `authenticator` connections to this test's database."""
    pool = AppDB(authenticator_conninfo(load_settings()))
    try:
        yield pool
    finally:
        pool.close()


def _project(db: Conn, org: str, slug: str) -> str:
    row = db.execute("SELECT p.project_id FROM core.projects p JOIN core.organizations o"
                     " USING (org_id) WHERE o.slug = %s AND p.slug = %s", (org, slug)).fetchone()
    assert row is not None, f"the app template has no project {org}/{slug}"
    return str(row["project_id"])


@pytest.fixture
def project(db: Conn) -> str:
    """acme/north: the reviewer's project."""
    return _project(db, "acme", "north")


@pytest.fixture
def other_project(db: Conn) -> str:
    """globex/south: a project the reviewer has nothing to do with."""
    return _project(db, "globex", "south")


@pytest.fixture
def scene(db: Conn, project: str) -> list[dict[str, Any]]:
    """The candidates the pipeline made for acme/north, by id."""
    rows = db.execute("SELECT candidate_id, source_id, type, start_ts, end_ts, status"
                      " FROM candidates.candidates WHERE project_id = %s ORDER BY candidate_id",
                      (project,)).fetchall()
    assert len(rows) >= 12, "the scene should give a queue longer than one 10-row page"
    return rows


@pytest.fixture
def reviewer_key(db: Conn, project: str) -> str:
    return str(make_person_key(db, project)["api_key"])


@pytest.fixture
def reviewer(app_db: AppDB, reviewer_key: str) -> Identity:
    return app_db.sign_in_key(reviewer_key)


def app_test(page: str, who: Identity | None = None, timeout: float = 30) -> Any:
    """An AppTest of a page (`streamlit_app.py` or `pages/…`), signed in as `who` when given."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP_DIR / "streamlit_app.py"), default_timeout=timeout)
    if page != "streamlit_app.py":
        at.switch_page(page)
    if who is not None:
        at.session_state["identity"] = who
        at.session_state["project_label"] = "acme/north"
    return at
