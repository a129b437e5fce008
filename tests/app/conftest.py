"""Fixtures of the review app's tests: the app's own database session and signed-in people."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.factories import make_key, make_project
from workers.appdb import AppDB, Identity
from workers.appdb.session import authenticator_conninfo
from workers.settings import load_settings

APP_DIR = Path(__file__).resolve().parents[2] / "streamlit_app"
# `streamlit run` puts the app's folder on sys.path; AppTest does not, so the tests do.
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def app_db(secinf_env: str) -> Iterator[AppDB]:
    """The app's pool of `authenticator` connections to this test's database."""
    pool = AppDB(authenticator_conninfo(load_settings()))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def project(db: Conn) -> str:
    return make_project(db, "acme", "north")


@pytest.fixture
def reviewer_key(db: Conn, project: str) -> str:
    return str(make_key(db, project, "reviewer")["api_key"])


@pytest.fixture
def reviewer(app_db: AppDB, reviewer_key: str) -> Identity:
    return app_db.sign_in_key(reviewer_key)


@pytest.fixture(autouse=True)
def _release_app_pools() -> Iterator[None]:
    """AppTest runs pages in this process: close the pools they cached (st.cache_resource)."""
    yield
    import streamlit as st

    st.cache_resource.clear()


def app_test(page: str, who: Identity | None = None, timeout: float = 30) -> Any:
    """An AppTest of a page (`Home.py` or `pages/…`), signed in as `who` when given."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP_DIR / "Home.py"), default_timeout=timeout)
    if page != "Home.py":
        at.switch_page(page)
    if who is not None:
        at.session_state["identity"] = who
        at.session_state["project_label"] = "acme/north"
    return at
