"""The shared-memory token buckets and request counters (plpython/rate_limits.py), on a
segment file in a temporary directory, with explicit clocks; the concurrency tests use
real processes, as backends are."""

from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from pathlib import Path

import pytest

from plpython import rate_limits as rl
from plpython.rate_limits import WINDOW, Limit, Segment, SegmentError, digest

P1 = str(uuid.UUID(int=1))
P2 = str(uuid.UUID(int=2))
T0 = 1_800_000_000.0  # unix seconds (an hour boundary: 1_800_000_000 % 3600 == 0)


@pytest.fixture
def seg(tmp_path: Path) -> Segment:
    return Segment.open(str(tmp_path / "seg"), slots=1024)


def bucket(name: str, per_second: float = 1.0, burst: float = 3) -> tuple[str, bytes, Limit]:
    return (name, digest("bucket", name), Limit(per_second, burst))


def test_a_bucket_admits_its_burst_then_refuses_with_the_wait(seg: Segment) -> None:
    b = bucket("key", per_second=2.0, burst=3)
    takes = [seg.take([b], now=100.0, unix=T0) for _ in range(4)]
    assert [t.ok for t in takes] == [True, True, True, False]
    assert [t.remaining for t in takes[:3]] == [2, 1, 0]
    assert takes[0].limit == 3 and takes[0].scope == "key"
    assert takes[2].reset_s == 2          # 3 tokens at 2/s: 1.5 s, rounded up
    refused = takes[3]
    assert (refused.reason, refused.scope, refused.remaining) == ("rate", "key", 0)
    assert refused.retry_after_s == 1     # one token at 2/s: 0.5 s, at least 1
    assert refused.reset_s == 2
    # Half a second later one token is back, and only one.
    assert seg.take([b], now=100.5, unix=T0).ok
    assert not seg.take([b], now=100.5, unix=T0).ok
    # Long after, full again (never more than the burst).
    later = [seg.take([b], now=1000.0, unix=T0).ok for _ in range(4)]
    assert later == [True, True, True, False]


def test_a_refused_request_takes_from_no_bucket(seg: Segment) -> None:
    key = bucket("key-a", burst=2)
    project = bucket("project", burst=10)
    for _ in range(2):
        assert seg.take([key, project], now=0.0, unix=T0).ok
    refused = seg.take([key, project], now=0.0, unix=T0)
    assert refused.reason == "rate" and refused.scope == "key-a"
    # The project's bucket lost only the two admitted requests' tokens.
    other = seg.take([bucket("key-b", burst=100), project], now=0.0, unix=T0)
    assert other.ok and other.scope == "project" and other.remaining == 7


def test_the_tightest_bucket_sets_the_headers(seg: Segment) -> None:
    key = bucket("key", burst=50)
    project = bucket("project", burst=5)
    t = seg.take([key, project], now=0.0, unix=T0)
    assert (t.scope, t.limit, t.remaining) == ("project", 5, 4)


def test_requests_are_counted_per_project_hour_and_day(seg: Segment) -> None:
    for _ in range(3):
        seg.take([], P1, now=0.0, unix=T0 + 10)
    seg.take([], P1, now=0.0, unix=T0 + 3600 + 10)
    seg.take([], P2, now=0.0, unix=T0 + 10)
    got = sorted(seg.counters())
    assert got == sorted([rl.Counter(P1, int(T0), 3, 0), rl.Counter(P1, int(T0) + 3600, 1, 0),
                          rl.Counter(P2, int(T0), 1, 0)])
    assert seg.today(P1, unix=T0 + 3600 + 20) == 4
    # Refused requests are not counted.
    seg.take([bucket("empty", burst=1)], P2, now=0.0, unix=T0)
    seg.take([bucket("empty", burst=1)], P2, now=0.0, unix=T0)
    assert seg.today(P2, unix=T0) == 2


def test_marking_a_committed_flush_hides_the_counter_until_it_grows(seg: Segment) -> None:
    for _ in range(3):
        seg.take([], P1, now=0.0, unix=T0)
    assert seg.mark_flushed([(P1, int(T0), 3)]) == 1
    assert seg.counters() == []
    seg.take([], P1, now=0.0, unix=T0)
    assert seg.counters() == [rl.Counter(P1, int(T0), 4, 3)]
    # A mark never goes past the counter nor backwards.
    seg.mark_flushed([(P1, int(T0), 99), (P2, int(T0), 5)])
    seg.mark_flushed([(P1, int(T0), 1)])
    assert seg.counters() == []


def test_the_daily_quota_counts_the_baseline_and_todays_counter(seg: Segment) -> None:
    for _ in range(2):
        assert seg.take([], P1, quota=5, baseline=3, now=0.0, unix=T0).ok
    refused = seg.take([], P1, quota=5, baseline=3, now=0.0, unix=T0)
    assert (refused.ok, refused.reason, refused.used) == (False, "quota", 5)
    assert refused.retry_after_s == 86400 - int(T0) % 86400
    # The refusal was not counted; another day starts from the baseline the caller gives.
    assert seg.today(P1, unix=T0) == 2
    assert seg.take([], P1, quota=5, baseline=0, now=0.0, unix=T0 + 86400).used == 1


def test_a_full_window_reuses_what_loses_nothing_and_keeps_unflushed_counts(
        tmp_path: Path) -> None:
    seg = Segment.open(str(tmp_path / "small"), slots=WINDOW)  # one window: every key shares it
    for i in range(WINDOW):
        assert seg.take([bucket(f"k{i}", per_second=1.0, burst=2)], now=0.0, unix=T0).ok
    assert seg.usage()["buckets"] == WINDOW
    # Every bucket is below full: the fullest is reused (no refusal for the newcomer).
    assert seg.take([bucket("new", burst=2)], now=0.0, unix=T0).ok
    # Refilled buckets are reused before anything else; counters take their slots.
    for i in range(WINDOW):
        assert seg.take([], str(uuid.UUID(int=100 + i)), now=10.0, unix=T0).ok
    usage = seg.usage()
    assert usage["buckets"] == 0 and usage["hour_counters"] + usage["day_counters"] == WINDOW
    # Unflushed counters are never evicted: a new project's count is dropped, and said so.
    t = seg.take([], P1, now=20.0, unix=T0)
    assert t.ok and t.dropped
    assert P1 not in {c.project_id for c in seg.counters()}
    # Once flushed and their hour is over, hour counters make room again.
    seg.mark_flushed([(c.project_id, c.hour, c.n) for c in seg.counters()])
    t = seg.take([], P1, now=30.0, unix=T0 + 3600)
    assert not t.dropped
    assert P1 in {c.project_id for c in seg.counters()}


def test_reopening_finds_the_same_epoch_and_state(tmp_path: Path) -> None:
    path = str(tmp_path / "seg")
    a = Segment.open(path, slots=1024)
    a.take([], P1, now=0.0, unix=T0)
    b = Segment.open(path, slots=4096)  # the file's own size wins
    assert (b.epoch, b.slots) == (a.epoch, 1024)
    assert b.today(P1, unix=T0) == 1
    other = Segment.open(str(tmp_path / "other"), slots=1024)
    assert other.epoch != a.epoch and len(a.epoch) == 32


def test_a_foreign_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "seg"
    path.write_bytes(b"not a segment" * 1000)
    with pytest.raises(SegmentError, match="remove the file"):
        Segment.open(str(path))


def test_the_module_can_be_inlined_in_a_raw_string() -> None:
    source = Path(rl.__file__).read_text()
    assert "'''" not in source and "$$" not in source


# ---------------------------------------------------------------- processes
def _hammer(path: str, n: int, project: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    seg = Segment.open(path)
    shared = ("project", digest("bucket", "shared"), Limit(1e-9, 250))
    admitted = 0
    for _ in range(n):
        if seg.take([shared], project).ok:
            admitted += 1
    out.put(admitted)


def test_processes_share_one_bucket_and_one_counter_exactly(tmp_path: Path) -> None:
    path = str(tmp_path / "seg")
    Segment.open(path)
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_hammer, args=(path, 200, P1, out)) for _ in range(6)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    admitted = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    elapsed = time.perf_counter() - started
    # 1200 attempts at a bucket of 250 that does not refill: exactly 250 pass, each counted.
    assert admitted == 250
    seg = Segment.open(path)
    assert seg.today(P1) == 250
    assert sum(c.n for c in seg.counters()) == 250
    print(f"6 processes x 200 takes under one lock: {1200 / elapsed:,.0f} takes/s")
