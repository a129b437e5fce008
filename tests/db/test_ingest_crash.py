"""Atomicity and concurrency with real processes: a kill mid-load, an exception between
COPY and merge, and two concurrent submissions of one batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.db.test_ingest_load import counts, run
from tests.support.factories import make_project
from workers.simulate import preset_config, simulate, write_outputs

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
REPO = Path(__file__).resolve().parents[2]
CHILD = """
import sys, time
from pathlib import Path
import psycopg
from psycopg.rows import dict_row
from workers.ingest import IngestRequest, ingest
dsn, path, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
if pause == 0:  # slow the stream down (small chunks, each late) so COPY can be caught
    import workers.ingest.load as load, workers.ingest.stream as stream
    from workers.ingest.formats import open_tracks
    load.open_tracks = lambda p, f=None, m=None, **kw: open_tracks(p, f, m, 1 << 16, **kw)
    encode = stream.Router.encode
    def slow(self, good, n):
        time.sleep(0.05)
        return encode(self, good, n)
    stream.Router.encode = slow
def hook(conn):
    print("staged", flush=True)
    time.sleep(pause)
with psycopg.connect(dsn, row_factory=dict_row) as conn:
    s = ingest(conn, IngestRequest(project="acme/plaza", source="cam", path=Path(path),
                                   before_merge=hook))
    print("done", s.batch_id, s.inserted, s.duplicate_batch, flush=True)
"""


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("big")
    return write_outputs(simulate(preset_config("crowd", 1, agents=150, duration=120.0)), out,
                         ["csv"])["csv"]


def _child(dsn: str, path: Path, pause: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD, dsn, str(path), str(pause)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


def _wait_for_copy(db: Conn, proc: subprocess.Popen[str]) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        row = db.execute("SELECT count(*) AS n FROM pg_stat_activity "
                         "WHERE query LIKE '%%COPY ingest%%' AND pid <> pg_backend_pid()"
                         ).fetchone()
        db.rollback()
        if row and row["n"]:
            return True
        time.sleep(0.01)
    return False


def test_kill_during_copy_and_before_merge_leaves_nothing(db: Conn, dsn: str,
                                                          big: Path) -> None:
    make_project(db, "acme", "plaza")
    before = counts(db)
    proc = _child(dsn, big, 0)
    assert _wait_for_copy(db, proc), "the child never reached COPY"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.3)  # the server notices the dead client and rolls back
    assert counts(db) == before
    proc = _child(dsn, big, 30)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "staged"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.3)
    assert counts(db) == before


def test_exception_between_copy_and_merge_rolls_back(db: Conn, tmp_path: Path) -> None:
    make_project(db, "acme", "plaza")
    p = tmp_path / "t.csv"
    p.write_text("track_id,frame,t,x,y\n1,0,0,0,0\n1,1,0.1,0.1,0\n")
    before = counts(db)

    def boom(conn: Conn) -> None:
        raise RuntimeError("injected")

    with pytest.raises(RuntimeError, match="injected"):
        run(db, path=p, before_merge=boom)
    assert counts(db) == before
    assert run(db, path=p).inserted == 2  # and the same batch applies afterwards


def test_concurrent_submissions_apply_once(db: Conn, dsn: str, big: Path) -> None:
    make_project(db, "acme", "plaza")
    procs = [_child(dsn, big, 0.5) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    done = [o[0].strip().splitlines()[-1].split() for o in outs]
    assert sorted(d[3] for d in done) == ["False", "True"]
    assert done[0][1] == done[1][1]  # same batch id
    c = counts(db)
    assert c["batches"] == 1 and c["points"] == int(max(d[2] for d in done))
    lines = sum(1 for _ in big.open()) - 1
    assert c["points"] == lines
