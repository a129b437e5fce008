"""The shard map's pure parts: routing a command by its --project, redaction, app sign-in
on the first shard that accepts (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from workers import shards
from workers.appdb import shards as app_shards
from workers.errors import AuthError
from workers.settings import load_settings


def test_routed_commands_note_their_project_for_their_run_only() -> None:
    seen: list[str | None] = []

    def command(project: str | None = None, other: int = 0) -> int:
        seen.append(shards.command_project())
        return other

    wrapped = shards.routed(command)
    assert wrapped(project=" acme/north ", other=3) == 3
    assert wrapped(other=1) == 1
    assert wrapped(project="") == 0
    assert seen == ["acme/north", None, None]
    assert shards.command_project() is None
    assert wrapped.__wrapped__ is command  # type: ignore[attr-defined]  # typer reads it


def test_without_a_map_nothing_is_routed() -> None:
    settings = load_settings()
    assert settings.shards is None and not shards.sharded(settings)
    assert shards.routed(lambda project: shards.route(settings))(project="acme/x") is None
    assert [s.name for s in shards.shards(settings)] == ["default"]
    assert shards.shard_of("acme/x", settings).conninfo == settings.conninfo()


def test_the_shard_map_needs_a_control_database() -> None:
    from workers.errors import UserError

    with pytest.raises(UserError, match="SECINF_SHARDS"), shards.control(load_settings()):
        pass


def test_redact_hides_the_password_only() -> None:
    text = shards.redact("host=db1 port=5432 dbname=secinf user=postgres password=s3cret")
    assert "s3cret" not in text and "password=***" in text and "host=db1" in text


class _FakeDB:
    def __init__(self, accepts: bool) -> None:
        self.accepts = accepts

    def sign_in_key(self, key: str) -> Any:
        if not self.accepts:
            raise AuthError(f"unknown key {key[:4]}…")
        return {"key": key}


def test_app_sign_in_takes_the_first_shard_that_accepts() -> None:
    a, b = _FakeDB(False), _FakeDB(True)
    db, who = app_shards.sign_in(lambda d: d.sign_in_key("sik_x"), [a, b])  # type: ignore[arg-type, union-attr]
    assert db is b and who == {"key": "sik_x"}
    with pytest.raises(AuthError, match="unknown key"):
        app_shards.sign_in(lambda d: d.sign_in_key("sik_x"), [a, a])  # type: ignore[arg-type, union-attr]
    with pytest.raises(AuthError, match="no shard"):
        app_shards.sign_in(lambda d: d.sign_in_key("sik_x"), [])
