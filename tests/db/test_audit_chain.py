"""The audit log's hash chain (issue 19, migration 0027): rows are sealed in order once their
transactions have ended, verification names the first broken link after any tampering a
superuser could do, nobody else can change or delete a row, rows land in monthly
partitions, and every row carries the caller's address where known."""

from __future__ import annotations

import itertools
import json
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from typer.testing import CliRunner

from tests.support.factories import make_project
from workers.cli.main import app
from workers.errors import SecinfError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def record(db: Conn, project: str | None, action: str, n: int = 1) -> None:
    for i in range(n):
        db.execute("SELECT audit.record(%s, %s, %s, %s)",
                   (project, action, f"t{i}", psycopg.types.json.Jsonb({"i": i})))
    db.commit()


def seal(db: Conn) -> int:
    row = db.execute("SELECT audit.seal() AS n").fetchone()
    db.commit()
    assert row is not None
    return int(row["n"])


def verify(db: Conn) -> dict[str, Any]:
    row = db.execute("SELECT * FROM audit.verify_chain()").fetchone()
    db.rollback()
    assert row is not None
    return dict(row)


def tamper(db: Conn, statement: str, *args: Any) -> None:
    """What only a superuser can do: switch the append-only trigger off and change rows."""
    db.execute("ALTER TABLE audit.log DISABLE TRIGGER audit_log_append_only")
    db.execute(statement, args)
    db.execute("ALTER TABLE audit.log ENABLE TRIGGER audit_log_append_only")
    db.commit()


def test_rows_are_sealed_in_order_and_the_chain_verifies(db: Conn) -> None:
    project = make_project(db, "audit-org", "chain")
    record(db, project, "test.one", 5)
    assert seal(db) >= 5
    whole = verify(db)
    assert whole["first_broken"] is None and whole["unsealed"] == 0
    assert whole["rows_checked"] >= 6                     # project.create too
    rows = db.execute("SELECT chain_seq, prev_hash, row_hash FROM audit.log "
                      "ORDER BY chain_seq").fetchall()
    assert [r["chain_seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["prev_hash"] is None
    assert all(b["prev_hash"] == a["row_hash"] for a, b in itertools.pairwise(rows))
    record(db, project, "test.two", 2)                     # the chain grows from its head
    assert seal(db) == 2 and seal(db) == 0
    assert verify(db)["rows_checked"] == whole["rows_checked"] + 2


@pytest.mark.parametrize(("change", "reason"), [
    ("UPDATE audit.log SET details = '{\"i\": 99}' WHERE chain_seq = %s",
     "its content or hash was changed"),
    ("UPDATE audit.log SET actor = 'someone else' WHERE chain_seq = %s",
     "its content or hash was changed"),
    ("DELETE FROM audit.log WHERE chain_seq = %s",
     "a row is missing before it or its place is taken twice"),
    ("UPDATE audit.log SET prev_hash = sha256('x') WHERE chain_seq = %s",
     "its content or hash was changed"),
])
def test_verification_names_the_first_broken_link(db: Conn, change: str, reason: str) -> None:
    project = make_project(db, "audit-org", "tamper")
    record(db, project, "test.tamper", 6)
    seal(db)
    n = verify(db)["rows_checked"]
    target = n - 3
    tamper(db, change, target)
    broken = verify(db)
    first = target + 1 if change.startswith("DELETE") else target
    assert (broken["first_broken"], broken["reason"]) == (first, reason)


def test_a_rehashed_row_still_breaks_the_link_after_it(db: Conn) -> None:
    """Recomputing the changed row's own hash only moves the break to the next row."""
    project = make_project(db, "audit-org", "rehash")
    record(db, project, "test.rehash", 4)
    seal(db)
    target = verify(db)["rows_checked"] - 2
    tamper(db, "UPDATE audit.log SET details = '{\"i\": 7}', row_hash = audit.row_hash("
               "prev_hash, chain_seq, audit_id, at, project_id, actor, action, target, "
               "'{\"i\": 7}', address) WHERE chain_seq = %s", target)
    broken = verify(db)
    assert (broken["first_broken"], broken["reason"]) == (
        target + 1, "its link to the row before was changed")


@pytest.mark.parametrize("statement", [
    "UPDATE audit.log SET details = '{}'",
    "DELETE FROM audit.log",
    "TRUNCATE audit.log",
    # the sealing switch does not open content either
    "SELECT set_config('secinf.audit_sealing', 'on', true); UPDATE audit.log SET actor = 'x'",
])
def test_nobody_changes_or_deletes_a_row_not_even_the_owner(db: Conn, statement: str) -> None:
    record(db, None, "test.locked", 2)
    seal(db)
    record(db, None, "test.unsealed", 1)
    db.execute("SET ROLE secinf_owner")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        db.execute(statement)
    db.rollback()


def test_a_row_of_an_open_transaction_waits_and_is_then_sealed_after_later_ones(
        db: Conn, dsn: str) -> None:
    with psycopg.connect(dsn, row_factory=dict_row) as slow:
        slow.execute("SELECT audit.record(NULL, 'test.slow', 'first written', '{}')")
        record(db, None, "test.fast", 1)              # commits while slow is open
        seal(db)
        pending = db.execute("SELECT action, chain_seq FROM audit.log WHERE action LIKE "
                             "'test.%' ORDER BY audit_id").fetchall()
        db.rollback()
        # fast's row is final only once no older transaction can still write: not yet.
        assert [p["chain_seq"] is None for p in pending] == [True]
        slow.commit()
    seal(db)
    rows = db.execute("SELECT action, chain_seq FROM audit.log WHERE action LIKE 'test.%' "
                      "ORDER BY chain_seq").fetchall()
    assert {r["action"] for r in rows} == {"test.slow", "test.fast"}
    assert all(r["chain_seq"] is not None for r in rows)
    assert verify(db)["first_broken"] is None


def test_rows_land_in_monthly_partitions_made_ahead(db: Conn) -> None:
    record(db, None, "test.partition", 1)
    row = db.execute("SELECT tableoid::regclass::text AS part FROM audit.log "
                     "WHERE action = 'test.partition'").fetchone()
    this_month = db.execute("SELECT 'audit.log_' || to_char(now() AT TIME ZONE 'UTC', "
                            "'YYYY_MM') AS name").fetchone()
    assert row is not None and this_month is not None and row["part"] == this_month["name"]
    parts = db.execute("SELECT count(*) AS n FROM pg_inherits "
                       "WHERE inhparent = 'audit.log'::regclass").fetchone()
    assert parts is not None and parts["n"] >= 5           # this month, 3 ahead, default
    assert db.execute("SELECT audit.ensure_partitions() AS n").fetchone() == {"n": 0}
    db.rollback()


def test_no_role_but_the_owner_holds_a_privilege_on_a_partition(db: Conn) -> None:
    """Reads go through audit.log (RLS, project_admin's grant); a partition is a side door
    only if someone holds a privilege on it."""
    rows = db.execute(
        "SELECT c.relname, a.grantee::regrole::text AS grantee, a.privilege_type"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a"
        " WHERE i.inhparent = 'audit.log'::regclass AND a.grantee <> c.relowner").fetchall()
    assert rows == []


def test_every_row_carries_the_callers_address(db: Conn) -> None:
    db.execute("SELECT set_config('request.headers', %s, true)",
               (json.dumps({"x-forwarded-for": "203.0.113.7, 10.0.0.1"}),))
    db.execute("SELECT audit.record(NULL, 'test.address', 'api', '{}')")
    db.commit()
    db.execute("SELECT audit.record(NULL, 'test.address', 'socket', '{}')")
    db.commit()
    rows = db.execute("SELECT target, address FROM audit.log WHERE action = 'test.address' "
                      "ORDER BY audit_id").fetchall()
    assert [(r["target"], r["address"]) for r in rows] == [("api", "203.0.113.7"),
                                                            ("socket", "local")]


def test_the_cli_verifies_and_fails_naming_the_broken_row(db: Conn, secinf_env: str) -> None:
    record(db, None, "test.cli", 3)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--seal"])
    assert ok.exit_code == 0, ok.output
    assert "audit chain whole" in ok.output
    target = verify(db)["rows_checked"] - 1
    tamper(db, "UPDATE audit.log SET target = 'forged' WHERE chain_seq = %s", target)
    bad = runner.invoke(app, ["audit", "verify"])
    assert isinstance(bad.exception, SecinfError) and bad.exception.exit_code == 1
    text = str(bad.exception)
    assert f"audit chain broken at position {target} (its content or hash was changed)" in text
    assert "action 'test.cli'" in text


def test_every_settings_change_is_audited_whatever_the_path(db: Conn) -> None:
    project = make_project(db, "audit-org", "settings")
    db.execute("SELECT review.project_settings(%s)", (project,))  # defaults: not a change
    db.execute("INSERT INTO pipeline.settings (project_id, key, value) VALUES (%s,"
               " 'smoothing_s', '0.8')", (project,))
    db.execute("UPDATE pipeline.settings SET value = '1.2' WHERE project_id = %s"
               " AND key = 'smoothing_s'", (project,))
    db.execute("UPDATE pipeline.settings SET value = '1.2', updated_at = now()"
               " WHERE project_id = %s AND key = 'smoothing_s'", (project,))  # no change
    db.execute("UPDATE review.settings SET auto_accept_rule = 0.97 WHERE project_id = %s",
               (project,))
    db.execute("DELETE FROM pipeline.settings WHERE project_id = %s AND key = 'smoothing_s'",
               (project,))
    db.commit()
    rows = db.execute("SELECT target, details FROM audit.log WHERE project_id = %s"
                      " AND action = 'settings.change' ORDER BY audit_id", (project,)).fetchall()
    assert [r["target"] for r in rows] == [
        "pipeline.settings:smoothing_s", "pipeline.settings:smoothing_s", "review.settings",
        "pipeline.settings:smoothing_s"]
    assert rows[0]["details"] == {"before": None, "after": {"value": 0.8}}
    assert rows[1]["details"] == {"before": {"value": 0.8}, "after": {"value": 1.2}}
    assert rows[2]["details"]["after"]["auto_accept_rule"] == 0.97
    assert rows[2]["details"]["before"]["auto_accept_rule"] != 0.97
    assert rows[3]["details"] == {"before": {"value": 1.2}, "after": None}


def test_a_keys_sign_in_is_audited(db: Conn) -> None:
    from tests.support.factories import make_key

    project = make_project(db, "audit-org", "sign-in")
    key = make_key(db, project, "customer")
    db.execute("SELECT api.exchange_key(%s)", (key["api_key"],))
    db.commit()
    rows = db.execute("SELECT actor, target, details FROM audit.log WHERE project_id = %s"
                      " AND action = 'api_key.sign_in'", (project,)).fetchall()
    prefix = key["api_key"][:16]
    assert [(r["actor"], r["target"]) for r in rows] == [(f"key:{prefix}", prefix)]
    assert rows[0]["details"]["role"] == "customer"
    assert key["api_key"] not in str(rows)             # never the key itself
