"""connect_read without SECINF_READ_DSN: the primary, in read-only transactions, so a write
sent down the read path fails the same way with or without a replica."""

from __future__ import annotations

import pytest

from workers.db.connect import address, connect_read
from workers.errors import ReadOnlyConnection

pytestmark = pytest.mark.db


def test_reads_fall_back_to_the_primary_read_only(secinf_env: str) -> None:
    with connect_read() as conn:
        row = conn.execute("SELECT current_database() AS db, "
                           "current_setting('transaction_read_only') AS ro").fetchone()
    assert row is not None and row["ro"] == "on"
    assert address(secinf_env).endswith(f"/{row['db']}")
    with pytest.raises(ReadOnlyConnection) as err, connect_read() as conn:
        conn.execute("CREATE TABLE public.nope (n int)")
    assert str(err.value) == (
        f"this is a read-only connection to the primary at {address(secinf_env)} "
        f"(SECINF_READ_DSN is unset); writes go to the primary at {address(secinf_env)} "
        "(the server said: cannot execute CREATE TABLE in a read-only transaction)")
