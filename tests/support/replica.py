"""Streaming replicas of throwaway primaries (workers/db/replica.py), for the tests that
need one: the skip markers they share, a replica for the length of a block, and a wait for
it to catch up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from tests.support.throwaway_cluster import ThrowawayCluster
from workers.db import replica as rp
from workers.settings import PG_BIN, Settings, load_settings

NEEDS_LOCAL_REPLICA = [
    pytest.mark.skipif(not (PG_BIN / "pg_basebackup").exists(),
                       reason=f"{PG_BIN}/pg_basebackup is absent: PostgreSQL 15's server "
                              "package provides it (`make system`)"),
    pytest.mark.skipif(bool(load_settings().dsn),
                       reason="SECINF_DSN: the server is not secinf's own, so secinf starts "
                              "no replica of it (the test's primary is a throwaway cluster, "
                              "which needs the local PostgreSQL binaries)"),
]
"""pytestmark entries of a test module that starts a replica of a throwaway cluster."""


def primary_settings(primary: ThrowawayCluster) -> Settings:
    """The throwaway primary's settings, its replica's home beside it."""
    return replace(primary.cluster.settings, replica_home=primary.home / "replica")


@contextmanager
def streaming_replica(primary: ThrowawayCluster) -> Iterator[rp.ReplicaStatus]:
    """`secinf db replica up` of the throwaway primary for the block, then `down`."""
    settings = primary_settings(primary)
    status = rp.up(settings)
    try:
        assert status.streaming and status.conninfo, status
        yield status
    finally:
        rp.down(settings)


def caught_up(settings: Settings, timeout: float = 20.0) -> rp.ReplicaStatus:
    """The replica's status once it has replayed everything the primary wrote."""
    deadline = time.monotonic() + timeout
    while True:
        st = rp.status(settings)
        if st.lag_bytes == 0 or time.monotonic() > deadline:
            assert st.lag_bytes == 0, st
            return st
        time.sleep(0.05)
