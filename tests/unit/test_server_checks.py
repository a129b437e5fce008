"""The start-up check names each missing extension or preload and how to get it."""

from __future__ import annotations

from typing import Any

import pytest

from workers.db.checks import REQUIRED_EXTENSIONS, check_server, require_server
from workers.errors import MissingExtension


class FakeServer:
    """Answers the three catalog queries check_server asks."""

    def __init__(self, available: set[str], preload: str, cron_db: str | None) -> None:
        self.available, self.preload, self.cron_db = available, preload, cron_db

    def execute(self, query: str) -> Any:
        outer = self

        class Result:
            def fetchall(self) -> list[dict[str, Any]]:
                return [{"name": n} for n in sorted(outer.available)]

            def fetchone(self) -> dict[str, Any]:
                if "shared_preload_libraries" in query:
                    return {"v": outer.preload}
                return {"v": outer.cron_db}

        return Result()


def test_a_complete_server_passes() -> None:
    server = FakeServer(set(REQUIRED_EXTENSIONS) | {"plpgsql"}, "timescaledb, pg_cron", "secinf")
    result = require_server(server)  # type: ignore[arg-type]
    assert result.ok and result.cron_database == "secinf"


def test_missing_pieces_are_named_with_the_fix() -> None:
    server = FakeServer({"pgcrypto", "plpython3u", "pg_cron"}, "pg_cron", None)
    assert not check_server(server).ok  # type: ignore[arg-type]
    with pytest.raises(MissingExtension) as err:
        require_server(server)  # type: ignore[arg-type]
    text = str(err.value)
    assert "timescaledb: TimescaleDB 2.x for PostgreSQL 15" in text
    assert "vector: pgvector" in text
    assert "shared_preload_libraries must include timescaledb" in text
    assert "pgcrypto:" not in text
