"""The pure parts of workers/db/backup.py and the refusals of `secinf db backup|restore`
(no database, no pgBackRest run)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workers.cli.db_cmd import app as db_app
from workers.db import backup as bk
from workers.db.archiving import DISCARD, archive_command, backup_paths
from workers.errors import UserError
from workers.settings import load_settings

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def _set(label: str, stop: datetime, kind: str = "full") -> bk.Backup:
    return bk.Backup(label=label, type=kind, started=stop - timedelta(seconds=5),
                     stopped=stop, size=1, repo_size=1, prior=None, wal_start=None,
                     wal_stop=None)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-05-01 12:00:00+00", T0),
    ("2026-05-01T14:00:00.5+02:00", T0 + timedelta(milliseconds=500)),
    ("2026-05-01T12:00:00Z", T0),
])
def test_times_with_a_zone_parse_to_utc(text: str, expected: datetime) -> None:
    assert bk.parse_time(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("2026-05-01 12:00", "has no time zone: add one, e.g. '2026-05-01 12:00+00'"),
    ("yesterday", "is not a time: give ISO 8601 with a zone"),
])
def test_bad_times_name_the_input_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(UserError, match="--to .*" + message.split(":")[0]) as err:
        bk.parse_time(text)
    assert message in str(err.value)


def test_the_newest_backup_that_ended_before_the_target_is_chosen() -> None:
    full, incr = _set("F", T0), _set("F_I", T0 + timedelta(minutes=10), "incr")
    assert bk.choose_backup([full, incr], T0 + timedelta(minutes=5)) is full
    assert bk.choose_backup([full, incr], T0 + timedelta(minutes=11)) is incr
    # pgBackRest's stop times are whole seconds: one that ended in the target's second is
    # taken only when nothing older exists.
    assert bk.choose_backup([full, incr], incr.stopped + timedelta(milliseconds=300)) is full
    assert bk.choose_backup([full], T0 + timedelta(milliseconds=300)) is full
    with pytest.raises(UserError, match="before the end of the oldest backup"):
        bk.choose_backup([full, incr], T0 - timedelta(seconds=1))
    with pytest.raises(UserError, match="no backup yet: run `secinf db backup`"):
        bk.choose_backup([], T0)


def test_pgbackrest_info_json_becomes_backups_oldest_first() -> None:
    stanza = {"name": "secinf", "backup": [
        {"label": "F_I", "type": "incr", "prior": "F", "timestamp": {"start": 200, "stop": 210},
         "info": {"size": 10, "repository": {"size": 3, "delta": 1}},
         "archive": {"start": "0003", "stop": "0004"}},
        {"label": "F", "type": "full", "timestamp": {"start": 100, "stop": 110},
         "info": {"size": 9, "repository": {"size": 2, "delta": 2}}},
    ]}
    sets = bk.parse_backups(stanza)
    assert [(b.label, b.prior, b.repo_size, b.wal_stop) for b in sets] == [
        ("F", None, 2, None), ("F_I", "F", 1, "0004")]
    assert sets[0].stopped == datetime.fromtimestamp(110, UTC)


def test_archive_command_switches_to_pgbackrest_once_configured(tmp_path: Path) -> None:
    settings = replace(load_settings(), dsn=None, home=tmp_path, port=5499)
    assert archive_command(settings) == DISCARD
    paths = backup_paths(settings)
    assert paths.repo == tmp_path / "backups"
    paths.base.mkdir()
    paths.config.write_text("[global]\n")
    command = archive_command(settings)
    assert command.endswith(f"--config={paths.config} --stanza=secinf archive-push %p")
    other = replace(settings, backup_repo=tmp_path / "elsewhere")
    assert backup_paths(other).repo == tmp_path / "elsewhere"
    text = bk.render_config(other, backup_paths(other))
    assert f"repo1-path={tmp_path / 'elsewhere'}" in text
    assert f"pg1-path={settings.pgdata}" in text and "pg1-port=5499" in text


def test_an_external_server_gets_a_configuration_not_a_backup(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECINF_DSN", "host=127.0.0.1 port=1 dbname=secinf user=postgres "
                                     "connect_timeout=1")
    result = CliRunner().invoke(db_app, ["backup"])
    assert result.exit_code == 2
    assert "that server's operator's job" in result.stderr
    assert "[secinf]" in result.stdout and "pg1-port=1" in result.stdout
    assert "archive-push %p" in result.stdout
    for args in (["backups"], ["restore", "--to", "2026-05-01 12:00+00"]):
        result = CliRunner().invoke(db_app, args)
        assert isinstance(result.exception, UserError)
        assert "SECINF_DSN is set: secinf " in str(result.exception)


def test_in_place_needs_confirmation_and_its_own_directory(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECINF_HOME", str(tmp_path))
    result = CliRunner().invoke(db_app, ["restore", "--to", "2026-05-01 12:00+00",
                                         "--in-place"])
    assert isinstance(result.exception, UserError)
    assert "everything after that is lost. Repeat with --yes" in str(result.exception)
    result = CliRunner().invoke(db_app, ["restore", "--to", "2026-05-01 12:00+00",
                                         "--in-place", "--yes", "--port", "5999"])
    assert "leave out --target-dir and --port" in str(result.exception)
    result = CliRunner().invoke(db_app, ["backup", "--type", "weekly"])
    assert "--type 'weekly': use one of full, diff, incr" in str(result.exception)
