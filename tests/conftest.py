"""Session-wide fixtures.

Database tests run against the project's cluster (or SECINF_DSN): pytest-postgresql
builds a template database once per session (all migrations and sql/), and each test gets
a fresh copy of it. SECINF_* variables are cleared for every test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from pytest_postgresql import factories

from workers.db.migrate import migrate
from workers.settings import load_settings

# Read once, before the per-test clearing below.
_SETTINGS = load_settings()
_ADMIN = conninfo_to_dict(_SETTINGS.conninfo(dbname="postgres"))
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# The MEVA clips of the development set (../shared/data/labelled/meva/).
MEVA_CLIPS = ["2018-03-11.11-15-08.11-20-08.hospital.G436",
              "2018-03-11.16-15-08.16-20-08.hospital.G436",
              "2018-03-15.15-45-00.15-50-00.school.G339"]


def _load_schema(host: str, port: int, user: str, dbname: str, password: str | None,
                 **_: object) -> None:
    migrate(make_conninfo(host=host, port=port, user=user, dbname=dbname, password=password))


postgresql_server = factories.postgresql_noproc(
    host=str(_ADMIN.get("host") or "localhost"),
    port=int(_ADMIN.get("port") or 5432),
    user=str(_ADMIN.get("user") or "postgres"),
    password=_ADMIN.get("password"),  # type: ignore[arg-type]
    dbname=f"secinf_test_{os.getpid()}",
    load=[_load_schema],
)
postgresql_clone = factories.postgresql("postgresql_server")


@pytest.fixture(autouse=True)
def _clear_secinf_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SECINF_"):
            monkeypatch.delenv(key)


@pytest.fixture
def dsn(postgresql_clone: psycopg.Connection[Any]) -> str:
    """Conninfo (admin) of this test's fresh copy of the migrated template."""
    info = postgresql_clone.info
    return make_conninfo(host=info.host, port=info.port, user=info.user,
                         dbname=info.dbname, password=info.password or None)


@pytest.fixture(scope="module")
def module_dsn(postgresql_server: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A copy of the template shared by one test module (for expensive, read-mostly data)."""
    from pytest_postgresql.janitor import DatabaseJanitor

    name = f"{postgresql_server.dbname}_{request.module.__name__.rsplit('.', 1)[-1]}"[:63]
    janitor = DatabaseJanitor(
        user=postgresql_server.user, host=postgresql_server.host, port=postgresql_server.port,
        dbname=name, template_dbname=postgresql_server.template_dbname,
        password=postgresql_server.password,
    )
    with janitor:
        yield make_conninfo(host=postgresql_server.host, port=postgresql_server.port,
                            user=postgresql_server.user, dbname=name,
                            password=postgresql_server.password or None)


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """An admin connection (dict rows) to this test's database."""
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
def secinf_env(dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the CLI and library at this test's database through SECINF_DSN."""
    monkeypatch.setenv("SECINF_DSN", dsn)
    return dsn


def shared_data(*parts: str) -> Path:
    """A path in ../shared/data, skipping the test (with the reason) where it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: recorded trajectories live in ../shared/data beside "
                    "the checkout (CI has them; a user's clone does not)")
    return path
