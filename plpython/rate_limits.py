"""Token buckets and API request counters in the database server's shared memory.

PostgREST runs GET requests (and STABLE functions) in READ ONLY transactions, so
api.pre_request cannot write a table on most requests. Buckets and per-project request
counters live instead in a file mapped into every backend (under /dev/shm: memory, not
disk), one per cluster and database, with fixed-size slots:

* a 4096-byte header: magic, layout version, slot count, the segment's *epoch* (random,
  drawn when the file is created: the counters' lifetime id) and its creation time;
* 64-byte slots found by a hash of their key with linear probing inside a window of
  WINDOW slots from the key's home slot. Kinds: a token bucket (tokens, last refill, rate,
  size), a project's requests in one UTC hour (count, count known flushed, hour, project)
  and in one UTC day (the daily quota's count).

Every read-modify-write holds one fcntl lock (byte 0 of the file, the whole segment): an
operation is a few slot reads and writes, microseconds, and one lock keeps a request's two
buckets and its counters consistent. POSIX locks die with their process, so a killed
backend never leaves the segment locked.

When a key's window is full, a slot that loses nothing is reused: a bucket that has refilled
to its size (identical to a new one), an hour counter the flush has committed and whose hour
is over, a day counter of an earlier day; failing that, the fullest bucket (the client gains
at most what it had left). Counters that are not flushed are never evicted; a counter that
finds no slot is dropped and reported (`dropped`).

The SQL wrappers (sql/250_billing_rate_limits.sql) call the functions at the end of this
module with `plpy` and PL/Python's GD; unit tests call Segment directly.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import mmap
import os
import struct
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

MAGIC = b"SECINFRL"
VERSION = 1
HEADER = 4096
SLOT = 64
DEFAULT_SLOTS = 65536
WINDOW = 32
CONFIG_TTL_S = 10.0
STAT_EVERY_S = 1.0
DIRECTORY = "/dev/shm"

KIND_EMPTY = 0
KIND_BUCKET = 1
KIND_HOUR = 2
KIND_DAY = 3

# magic, version, slots, epoch (16 random bytes), created (unix seconds)
_HEAD = struct.Struct("<8sII16sd")
# key digest, kind, tokens, last refill (monotonic s), per_second, burst
_BUCKET = struct.Struct("<16sB7xdddd8x")
# key digest, kind, n, flushed, period start (unix s), project uuid
_COUNTER = struct.Struct("<16sB7xqqq16s")
assert _BUCKET.size == SLOT and _COUNTER.size == SLOT


class SegmentError(Exception):
    """The rate-limit segment file is not one this code wrote."""


class Limit(NamedTuple):
    per_second: float
    burst: float


class Take(NamedTuple):
    """The outcome of one request against its buckets (and counters)."""

    ok: bool
    reason: str | None       # None | 'rate' | 'quota'
    scope: str | None        # the bucket that decided the headers (the tightest) or refused
    limit: int               # that bucket's size
    per_second: float
    remaining: int           # whole tokens left in it after this request
    reset_s: int             # seconds until it is full again
    retry_after_s: int       # seconds until a refused request can pass (0 when ok)
    used: int | None         # the project's requests today, this one included when ok
    quota: int | None        # the project's daily quota (None: unlimited or no project)
    dropped: bool            # a counter found no free slot (its count is lost)


class Counter(NamedTuple):
    project_id: str
    hour: int                # unix seconds, a multiple of 3600
    n: int
    flushed: int


def digest(*parts: str | bytes | int) -> bytes:
    """The 16-byte key of a slot: a hash of its parts (never all zero: that is empty)."""
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        raw = p if isinstance(p, bytes) else str(p).encode()
        h.update(len(raw).to_bytes(4, "little"))
        h.update(raw)
    d = h.digest()
    return d if any(d) else b"\x01" + d[1:]


def hour_of(unix: float) -> int:
    return int(unix // 3600) * 3600


def day_of(unix: float) -> int:
    return int(unix // 86400) * 86400


def _ceil_s(seconds: float) -> int:
    return max(1, math.ceil(seconds - 1e-9))


class Segment:
    """One cluster+database's mapped segment (fd and mmap stay open for the backend)."""

    def __init__(self, path: str, fd: int, mm: mmap.mmap) -> None:
        self.path = path
        self.fd = fd
        self.mm = mm
        magic, version, slots, epoch, created = _HEAD.unpack_from(mm, 0)
        if magic != MAGIC or version != VERSION or len(mm) != HEADER + slots * SLOT:
            raise SegmentError(
                f"{path} is not a secinf rate-limit segment of layout {VERSION} "
                f"({len(mm)} bytes): remove the file (buckets restart full, unflushed "
                "request counts are lost) and retry")
        self.slots: int = slots
        self.epoch: str = epoch.hex()
        self.created: float = created
        self._homes: int = slots - WINDOW + 1

    # ------------------------------------------------------------------ opening
    @classmethod
    # (A quoted return type: the server runs this module without the __future__ import.)
    def open(cls, path: str, slots: int = DEFAULT_SLOTS) -> "Segment":  # noqa: UP037
        """Map the segment at `path`, creating it (sparse, zero slots) if absent."""
        if slots < WINDOW:
            raise ValueError(f"a segment needs at least {WINDOW} slots (got {slots})")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0)
            try:
                if os.fstat(fd).st_size == 0:
                    os.ftruncate(fd, HEADER + slots * SLOT)
                    os.pwrite(fd, _HEAD.pack(MAGIC, VERSION, slots, os.urandom(16),
                                             time.time()), 0)
                size = os.fstat(fd).st_size
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0)
            if size < HEADER:
                raise SegmentError(f"{path} is truncated ({size} bytes): remove it and retry")
            mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, mm)

    def close(self) -> None:
        self.mm.close()
        os.close(self.fd)

    @contextmanager
    def locked(self) -> Iterator[None]:
        fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, 0)
        try:
            yield
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, 0)

    # ------------------------------------------------------------------ slots
    def _home(self, key: bytes) -> int:
        return int.from_bytes(key[:8], "little") % self._homes

    def _find(self, key: bytes) -> tuple[int | None, int]:
        """(offset of the key's slot or None, home slot index)."""
        home = self._home(key)
        start = HEADER + home * SLOT
        window = self.mm[start:start + WINDOW * SLOT]
        pos = window.find(key)
        while pos != -1:
            if pos % SLOT == 0:
                return start + pos, home
            pos = window.find(key, pos + 1)
        return None, home

    def _claim(self, key: bytes, home: int, now: float, unix: float) -> int | None:
        """A slot for a new key in its window: empty, else one that loses nothing, else the
        fullest bucket; None when every slot holds a counter that is not flushed."""
        start = HEADER + home * SLOT
        window = self.mm[start:start + WINDOW * SLOT]
        kinds = window[16::SLOT]
        empty = kinds.find(bytes([KIND_EMPTY]))
        if empty != -1:
            return start + empty * SLOT
        hour, day = hour_of(unix), day_of(unix)
        fullest, fullest_fill = None, -1.0
        for i in range(WINDOW):
            off = i * SLOT
            kind = window[off + 16]
            if kind == KIND_BUCKET:
                _, _, tokens, updated, rate, burst = _BUCKET.unpack_from(window, off)
                fill = min(burst, tokens + max(0.0, now - updated) * rate) / burst
                if fill >= 1.0:
                    return start + off
                if fill > fullest_fill:
                    fullest, fullest_fill = start + off, fill
            elif kind == KIND_HOUR:
                _, _, n, flushed, period, _ = _COUNTER.unpack_from(window, off)
                if flushed >= n and period < hour:
                    return start + off
            elif kind == KIND_DAY:
                _, _, _, _, period, _ = _COUNTER.unpack_from(window, off)
                if period < day:
                    return start + off
        return fullest

    def _bucket(self, key: bytes, limit: Limit, now: float, unix: float
                ) -> tuple[int | None, float]:
        """(slot offset or None when no slot is free, tokens after refill)."""
        off, home = self._find(key)
        if off is None:
            # Written at once: a second bucket of the same request may probe this window.
            off = self._claim(key, home, now, unix)
            if off is not None:
                _BUCKET.pack_into(self.mm, off, key, KIND_BUCKET, float(limit.burst), now,
                                  limit.per_second, float(limit.burst))
            return off, float(limit.burst)
        _, _, tokens, updated, _, _ = _BUCKET.unpack_from(self.mm, off)
        return off, min(float(limit.burst), tokens + max(0.0, now - updated) * limit.per_second)

    def _count(self, kind: int, project: str, period: int, now: float, unix: float) -> int | None:
        """Add one to a counter; its new value, None when it found no slot."""
        key = digest(kind, project, period)
        off, home = self._find(key)
        if off is None:
            off = self._claim(key, home, now, unix)
            if off is None:
                return None
            _COUNTER.pack_into(self.mm, off, key, kind, 1, 0, period, uuid.UUID(project).bytes)
            return 1
        _, _, n, flushed, _, pid = _COUNTER.unpack_from(self.mm, off)
        _COUNTER.pack_into(self.mm, off, key, kind, n + 1, flushed, period, pid)
        return int(n) + 1

    def _read_counter(self, kind: int, project: str, period: int) -> int:
        off, _ = self._find(digest(kind, project, period))
        if off is None:
            return 0
        return int(_COUNTER.unpack_from(self.mm, off)[2])

    # ------------------------------------------------------------------ requests
    def take(self, buckets: Sequence[tuple[str, bytes, Limit]], project: str | None = None,
             quota: int | None = None, baseline: int = 0, now: float | None = None,
             unix: float | None = None) -> Take:
        """One request: refused ('quota') when the project's requests today (`baseline`,
        the flushed use not in this segment's counters, plus today's counter) have reached
        `quota`; refused ('rate') when any bucket (scope, key, limit) holds less than one
        token; else one token from each and one more request counted for `project`.
        A refused request takes nothing and is not counted."""
        now = time.monotonic() if now is None else now
        unix = time.time() if unix is None else unix
        with self.locked():
            used = None
            if project is not None:
                used = baseline + self._read_counter(KIND_DAY, project, day_of(unix))
                if quota is not None and used + 1 > quota:
                    return Take(False, "quota", None, 0, 0.0, 0, 0,
                                _ceil_s(day_of(unix) + 86400 - unix), used, quota, False)
            states = []
            for scope, key, limit in buckets:
                off, tokens = self._bucket(key, limit, now, unix)
                states.append((scope, key, limit, off, tokens))
            empty = [s for s in states if s[4] < 1.0]
            if empty:
                for _scope, key, limit, off, tokens in states:
                    if off is not None:
                        _BUCKET.pack_into(self.mm, off, key, KIND_BUCKET, tokens, now,
                                          limit.per_second, float(limit.burst))
                worst = max(empty, key=lambda s: (1.0 - s[4]) / s[2].per_second)
                scope, _, limit, _, tokens = worst
                return Take(False, "rate", scope, int(limit.burst), limit.per_second, 0,
                            _ceil_s((limit.burst - tokens) / limit.per_second),
                            _ceil_s((1.0 - tokens) / limit.per_second), used, quota, False)
            tightest = None
            for scope, key, limit, off, tokens in states:
                left = tokens - 1.0
                if off is not None:
                    _BUCKET.pack_into(self.mm, off, key, KIND_BUCKET, left, now,
                                      limit.per_second, float(limit.burst))
                if tightest is None or left < tightest[2]:
                    tightest = (scope, limit, left)
            dropped = False
            if project is not None:
                hour_n = self._count(KIND_HOUR, project, hour_of(unix), now, unix)
                day_n = self._count(KIND_DAY, project, day_of(unix), now, unix)
                dropped = hour_n is None or day_n is None
                used = (used or 0) + 1
        if tightest is None:
            return Take(True, None, None, 0, 0.0, 0, 0, 0, used, quota, dropped)
        scope, limit, left = tightest
        return Take(True, None, scope, int(limit.burst), limit.per_second, math.floor(left),
                    _ceil_s((limit.burst - left) / limit.per_second), 0, used, quota, dropped)

    def today(self, project: str, unix: float | None = None) -> int:
        """The project's requests counted in this segment today."""
        unix = time.time() if unix is None else unix
        with self.locked():
            return self._read_counter(KIND_DAY, project, day_of(unix))

    # ------------------------------------------------------------------ flushing
    def counters(self) -> list[Counter]:
        """Every hour counter with requests the flush has not seen committed. The segment
        is scanned without the lock (read(2): holes are not made resident), then each
        counter found is re-read under it."""
        offsets = []
        chunk = 4096 * SLOT
        for base in range(HEADER, HEADER + self.slots * SLOT, chunk):
            data = os.pread(self.fd, min(chunk, HEADER + self.slots * SLOT - base), base)
            kinds = data[16::SLOT]
            pos = kinds.find(bytes([KIND_HOUR]))
            while pos != -1:
                offsets.append(base + pos * SLOT)
                pos = kinds.find(bytes([KIND_HOUR]), pos + 1)
        found = []
        with self.locked():
            for off in offsets:
                _, kind, n, flushed, period, pid = _COUNTER.unpack_from(self.mm, off)
                if kind == KIND_HOUR and n > flushed:
                    found.append(Counter(str(uuid.UUID(bytes=pid)), int(period), int(n),
                                         int(flushed)))
        return found

    def mark_flushed(self, committed: Iterable[tuple[str, int, int]]) -> int:
        """Record (project, hour, n) as committed to billing.request_counts, so the counter
        can be evicted once its hour is over. Returns the counters marked."""
        marked = 0
        with self.locked():
            for project, hour, n in committed:
                off, _ = self._find(digest(KIND_HOUR, project, hour))
                if off is None:
                    continue
                key, kind, cur, flushed, period, pid = _COUNTER.unpack_from(self.mm, off)
                new = max(flushed, min(cur, n))
                if new != flushed:
                    _COUNTER.pack_into(self.mm, off, key, kind, cur, new, period, pid)
                    marked += 1
        return marked

    def usage(self) -> dict[str, int]:
        """Slots in use by kind (for operators and tests)."""
        data = os.pread(self.fd, self.slots * SLOT, HEADER)
        kinds = data[16::SLOT]
        return {"slots": self.slots, "buckets": kinds.count(bytes([KIND_BUCKET])),
                "hour_counters": kinds.count(bytes([KIND_HOUR])),
                "day_counters": kinds.count(bytes([KIND_DAY]))}


# ====================================================================== in the server
# Called by the PL/Python wrappers with `plpy` and GD (the backend's dict shared by its
# PL/Python functions). GD keeps the open segment and the limits per project for
# CONFIG_TTL_S; the SQL functions they read are in sql/251_billing_rate_limits_api.sql.

def segment_name(system_identifier: str, port: str, database_oid: str) -> str:
    return f"secinf-ratelimits-v{VERSION}-{system_identifier}-{port}-{database_oid}"


def segment(plpy: Any, gd: dict[str, Any], directory: str | None = None) -> Segment:
    """This backend's segment of its cluster and database (opened once per backend; re-opened
    when the file was removed or replaced)."""
    seg: Segment | None = gd.get("secinf_rl_segment")
    now = time.monotonic()
    if seg is not None:
        if now - gd.get("secinf_rl_checked", 0.0) < STAT_EVERY_S:
            return seg
        try:
            same = os.stat(seg.path).st_ino == os.fstat(seg.fd).st_ino
        except FileNotFoundError:
            same = False
        gd["secinf_rl_checked"] = now
        if same:
            return seg
        seg.close()
        gd.pop("secinf_rl_segment", None)
    row = plpy.execute(
        "SELECT s.system_identifier::text AS sysid, current_setting('port') AS port,"
        " d.oid::text AS dboid FROM pg_catalog.pg_control_system() s,"
        " pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()")[0]
    base = directory or gd.get("secinf_rl_directory") or (
        DIRECTORY if os.access(DIRECTORY, os.W_OK) else "/tmp")
    seg = Segment.open(os.path.join(base, segment_name(row["sysid"], row["port"],
                                                       row["dboid"])))
    gd["secinf_rl_segment"] = seg
    gd["secinf_rl_checked"] = now
    return seg


def _config(plpy: Any, gd: dict[str, Any], seg: Segment, project: str | None,
            unix: float) -> dict[str, Any]:
    """billing.rate_config for a project (None: the settings only), cached per backend."""
    cache: dict[Any, tuple[float, dict[str, Any]]] = gd.setdefault("secinf_rl_config", {})
    day = day_of(unix)
    hit = cache.get((project, day, seg.epoch))
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    plan = gd.get("secinf_rl_config_plan")
    if plan is None:
        plan = plpy.prepare("SELECT * FROM billing.rate_config($1, $2, to_timestamp($3))",
                            ["uuid", "text", "float8"])
        gd["secinf_rl_config_plan"] = plan
    row = dict(plpy.execute(plan, [project, seg.epoch, float(day)])[0])
    if len(cache) > 10000:
        cache.clear()
    cache[(project, day, seg.epoch)] = (now + CONFIG_TTL_S, row)
    return row


def admit_request(plpy: Any, gd: dict[str, Any], project: str, bucket: str | None
                  ) -> dict[str, Any]:
    """A request of `project`: its quota of api_requests today, then (when `bucket` names
    the caller: 'key:<key_id>' or 'account:<name>') the caller's and the project's
    buckets; counted when admitted. Returns Take as a dict."""
    seg = segment(plpy, gd)
    unix = time.time()
    cfg = _config(plpy, gd, seg, project, unix)
    buckets: list[tuple[str, bytes, Limit]] = []
    if bucket is not None:
        # A plan without a row for a scope has no bucket of that scope.
        caller = "key" if bucket.startswith("key:") else "account"
        if cfg["key_per_second"] is not None:
            buckets.append((caller, digest("bucket", "key", project, bucket),
                            Limit(cfg["key_per_second"], cfg["key_burst"])))
        if cfg["project_per_second"] is not None:
            buckets.append(("project", digest("bucket", "project", project),
                            Limit(cfg["project_per_second"], cfg["project_burst"])))
    quota = cfg["quota"]
    taken = seg.take(buckets, project, None if quota is None else int(quota),
                     int(cfg["used"]) - int(cfg["flushed"]), unix=unix)
    return taken._asdict()


def admit_anonymous(plpy: Any, gd: dict[str, Any], scope: str, name: str) -> dict[str, Any]:
    """One bucket of the settings' limits for callers without a project: scope 'anon'
    (every anonymous request) or 'exchange' (key exchanges per lookup prefix)."""
    seg = segment(plpy, gd)
    cfg = _config(plpy, gd, seg, None, time.time())
    limit = Limit(cfg[f"{scope}_per_second"], cfg[f"{scope}_burst"])
    return seg.take([(scope, digest("bucket", scope, name), limit)])._asdict()


def snapshot(plpy: Any, gd: dict[str, Any]) -> list[dict[str, Any]]:
    """Hour counters not yet known flushed, as rows (epoch, project_id, hour, n)."""
    seg = segment(plpy, gd)
    return [{"epoch": seg.epoch, "project_id": c.project_id, "hour": c.hour, "n": c.n}
            for c in seg.counters()]


def mark(plpy: Any, gd: dict[str, Any], epoch: str, committed_json: str | None) -> int:
    """Mark counters of `epoch` as committed: a JSON array of [project, hour, n]."""
    seg = segment(plpy, gd)
    if epoch != seg.epoch or not committed_json:
        return 0
    return seg.mark_flushed((str(p), int(h), int(n)) for p, h, n in json.loads(committed_json))


def info(plpy: Any, gd: dict[str, Any]) -> str:
    """The segment's path, epoch and slots in use, as JSON."""
    seg = segment(plpy, gd)
    return json.dumps({"path": seg.path, "epoch": seg.epoch, "created": seg.created,
                       **seg.usage()})


def collect_garbage(plpy: Any, gd: dict[str, Any]) -> list[str]:
    """Remove the segments of this cluster's databases that no longer exist (tests create
    and drop many); returns the files removed."""
    seg = segment(plpy, gd)
    directory, own = os.path.split(seg.path)
    prefix = own.rsplit("-", 1)[0] + "-"
    live = {r["oid"] for r in plpy.execute("SELECT oid::text AS oid FROM pg_catalog.pg_database")}
    removed = []
    for name in os.listdir(directory):
        if name.startswith(prefix) and name[len(prefix):] not in live:
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except FileNotFoundError:
                pass
    return removed
