"""The tenancy commands end to end through the console script's entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def secinf(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli.main", *args], capture_output=True, text=True,
        env={"SECINF_DSN": dsn, "PATH": "/usr/bin:/bin", "HOME": "/tmp"}, timeout=120,
    )


def test_project_keys_and_analysts_from_the_command_line(dsn: str, db: Conn) -> None:
    made = secinf(dsn, "project", "create", "--org", "acme", "--name", "Gate 4", "--json")
    assert made.returncode == 0, made.stderr
    project = json.loads(made.stdout)
    assert project["org"] == "acme" and project["slug"] == "gate-4"

    key = secinf(dsn, "keys", "create", "-p", "acme/gate-4", "-r", "reviewer", "--expires",
                 "7d", "--json")
    assert key.returncode == 0, key.stderr
    prefix = json.loads(key.stdout)["lookup_prefix"]
    listed = json.loads(secinf(dsn, "keys", "list", "-p", "acme/gate-4", "--json").stdout)
    assert [k["lookup_prefix"] for k in listed] == [prefix]
    assert "api_key" not in listed[0]
    assert secinf(dsn, "keys", "revoke", prefix).returncode == 0
    # A reviewer's key with an owner: the person it decides as (docs/review.md).
    db.execute("SELECT core.create_account('rita', 'correct horse battery')")
    db.execute("SELECT core.add_member(%s, 'user', 'rita', 'reviewer')",
               (project["project_id"],))
    db.commit()
    owned = secinf(dsn, "keys", "create", "-p", "acme/gate-4", "-r", "reviewer", "--owner",
                   "rita", "--json")
    assert owned.returncode == 0, owned.stderr
    listed = json.loads(secinf(dsn, "keys", "list", "-p", "acme/gate-4", "--json").stdout)
    assert [k["owner"] for k in listed] == [None, "rita"]
    stranger = secinf(dsn, "keys", "create", "-p", "acme/gate-4", "-r", "reviewer", "--owner",
                      "zoe")
    assert stranger.returncode == 2
    assert 'key owner "zoe" is not an account of this project' in stranger.stderr


def test_user_errors_exit_2_with_a_message_and_no_traceback(dsn: str) -> None:
    out = secinf(dsn, "keys", "create", "-p", "nobody/nothing", "-r", "customer")
    assert out.returncode == 2
    assert 'unknown project "nobody/nothing"' in out.stderr
    assert "Traceback" not in out.stderr
    bad_role = secinf(dsn, "keys", "create", "-p", "x/y", "-r", "superuser")
    assert bad_role.returncode == 2 and "is not a key role" in bad_role.stderr
    missing = secinf(dsn, "keys", "revoke", "sik_000000000000")
    assert missing.returncode == 2 and "no API key with prefix" in missing.stderr


def test_unreachable_database_is_a_clear_error() -> None:
    out = secinf("host=127.0.0.1 port=1 dbname=x user=y connect_timeout=2", "project", "list")
    assert out.returncode == 1
    assert "Cannot connect to SECINF_DSN" in out.stderr and "Traceback" not in out.stderr
