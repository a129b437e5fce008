"""Settings, messages and paths of the read replica (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from workers.cli.tenancy_cmd import analyst_server
from workers.db import replica as rp
from workers.db.connect import address, read_only, read_only_refusal
from workers.errors import UserError
from workers.settings import load_settings


def test_without_a_read_dsn_reads_use_the_primary(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("SECINF_HOME", str(tmp_path))
    s = load_settings()
    assert s.read_dsn is None and s.replica_port == 0
    assert s.read_conninfo() == s.conninfo()
    assert s.read_conninfo(user="authenticator") == s.conninfo(user="authenticator")
    assert s.replica_dir == tmp_path / "replica"


def test_a_read_dsn_keeps_its_server_and_swaps_user_and_database(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECINF_READ_DSN", "host=replica.example port=6432 user=admin")
    monkeypatch.setenv("SECINF_REPLICA_PORT", "5440")
    monkeypatch.setenv("SECINF_REPLICA_HOME", "/srv/replica")
    s = load_settings()
    params = conninfo_to_dict(s.read_conninfo(user="authenticator"))
    assert params == {"host": "replica.example", "port": "6432", "user": "authenticator",
                      "dbname": "secinf"}
    assert s.replica_port == 5440 and s.replica_dir == Path("/srv/replica")


def test_a_replica_port_must_be_a_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECINF_REPLICA_PORT", "next")
    with pytest.raises(UserError, match="SECINF_REPLICA_PORT='next' is not a port"):
        load_settings()


def test_read_connections_are_read_only_by_default() -> None:
    params = conninfo_to_dict(read_only("host=/run port=5434 dbname=secinf options='-c a=b'"))
    assert params["options"] == "-c a=b -c default_transaction_read_only=on"
    assert address("host=h port=1 dbname=d password=secret") == "h:1/d"


def test_a_refused_write_names_both_servers() -> None:
    replica = "host=/var/lib/secinf/replica/run port=5434 dbname=secinf"
    primary = "host=/var/lib/secinf/run port=5433 dbname=secinf password=x"
    err = read_only_refusal(replica, primary, replica=True,
                            detail="cannot execute INSERT in a read-only transaction")
    assert str(err) == (
        "this is the read replica at /var/lib/secinf/replica/run:5434/secinf; writes go to "
        "the primary at /var/lib/secinf/run:5433/secinf (the server said: cannot execute "
        "INSERT in a read-only transaction)")
    assert str(read_only_refusal(primary, primary, replica=False)).startswith(
        "this is a read-only connection to the primary at /var/lib/secinf/run:5433/secinf "
        "(SECINF_READ_DSN is unset); writes go to the primary")


def test_the_replica_lives_in_its_own_home_on_its_own_port(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECINF_HOME", str(tmp_path))
    s = load_settings()
    rs = rp.replica_settings(s)
    assert (rs.home, rs.port, rs.pgdata) == (tmp_path / "replica", s.port + 1,
                                             tmp_path / "replica" / "pg15")
    assert rs.socket_dir == tmp_path / "replica" / "run" and rs.backup_repo is None
    (tmp_path / "replica").mkdir()
    (tmp_path / "replica" / rp.STATE_FILE).write_text('{"port": 5477}')
    assert rp.replica_settings(s).port == 5477  # the port `up` chose, remembered


@pytest.mark.parametrize("where", ["", "pg15"])
def test_the_replica_home_never_holds_the_primary(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path, where: str) -> None:
    monkeypatch.setenv("SECINF_HOME", str(tmp_path))
    monkeypatch.setenv("SECINF_REPLICA_HOME", str(tmp_path / where))
    with pytest.raises(UserError, match="holds the primary's data"):
        rp.down(load_settings())


def test_an_external_server_is_told_what_its_operator_would_do(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECINF_DSN", "host=db.example port=5432 dbname=app user=admin")
    with pytest.raises(UserError) as err:
        rp.down(load_settings())
    text = str(err.value)
    assert "For the server at db.example:5432/app, its operator would:" in text
    assert "-R -X stream -C -S secinf_replica" in text
    assert "SECINF_READ_DSN='host=<replica host> port=<its port> dbname=app" in text


def test_analysts_are_sent_to_the_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    assert analyst_server(load_settings(), "127.0.0.1", 5433) == ("127.0.0.1", 5433)
    monkeypatch.setenv("SECINF_READ_DSN", "host=/var/lib/secinf/replica/run port=5434")
    assert analyst_server(load_settings(), "127.0.0.1", 5433) == ("127.0.0.1", 5434)
    monkeypatch.setenv("SECINF_READ_DSN", "host=ro.example port=6432")
    assert analyst_server(load_settings(), "127.0.0.1", 5433) == ("ro.example", 6432)
