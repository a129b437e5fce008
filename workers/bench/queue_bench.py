"""`secinf bench queue`: claim throughput and exactly-once of the job queue (issue 20).

In a scratch database (beside the configured one, dropped afterwards): three projects on the
free, team and enterprise plans, so the queue holds three priorities (5,000-job chunks of
no-op jobs round-robin over them, queued with `client.enqueue_many`, timed). For each worker
count N, a fresh queue of `jobs` jobs and N workers, each on its own connection as
`pipeline` over loopback TCP (a login made for the run: the cluster trusts only its socket
without a password), all started at once (threads, or processes with --processes); each
loops claim(limit=batch) → record (job_id, attempt) → complete until a claim comes back
empty. Jobs/s is jobs ÷ the time from the start to the last completion; claim latency is
each non-empty claim's round trip. Exactly-once is checked twice: by the workers' own
records (no job_id completed twice, every queued id completed) and by the tables (every job
succeeded, one succeeded attempt per job and its result, one attempt per job).

The crash round (--crash-workers N, lease 2 s): a quarter of the workers die mid-run; each
completes its share's first half, claims once more and drops its connection with the claim
unfinished. The others keep claiming until every job is done, so the lease runs out, a
claim reaps it and another worker runs the job as attempt 2. Once its lease has passed the
dead worker comes back as a zombie and tries to complete what it abandoned: every such
write-back must be refused (JB001), every abandoned job must end with two attempts (the
first expired or stale_refused, the second succeeded) and the result of attempt 2. "No job
run twice" there means no job completed twice and one fenced write-back per job.
Seconds are printed, never asserted.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import secrets
import statistics
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from rich import box
from rich.table import Table

from workers import tenancy
from workers.bench.scratch import scratch_database, settle
from workers.cli.output import console, err_console, print_json
from workers.db.connect import connect
from workers.db.queries import query
from workers.errors import UserError
from workers.queue import client
from workers.settings import Settings, load_settings

KIND = "noop"
PLANS = ("free", "team", "enterprise")
CHUNK = 5000
LEASE_S = 30.0
CRASH_LEASE_S = 2.0
CRASH_RETRY = timedelta(milliseconds=100)
POLL_S = 0.02
SAMPLE_S = 0.1
STALL_S = 60.0
MAX_WORKERS = 150
Conn = psycopg.Connection[dict[str, Any]]


def parse_workers(text: str) -> list[int]:
    """`1,4,16,64` → [1, 4, 16, 64] (UserError naming the input otherwise)."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or any(n < 1 or n > MAX_WORKERS for n in counts):
        raise UserError(f"--workers {text!r}: give worker counts from 1 to {MAX_WORKERS}, "
                        "comma-separated (e.g. 1,4,16,64)")
    return counts


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


# --------------------------------------------------------------------------- one worker
@dataclass(frozen=True)
class WorkerPlan:
    """What one worker does (picklable: it crosses into a process with --processes)."""

    name: str
    conninfo: str
    batch: int
    lease_s: float
    total: int
    patient: bool
    """Keep claiming after an empty claim until every job is done (others' leases expire)."""
    die_after: int | None = None
    """Complete this many jobs, then abandon the next claim and die (crash round)."""


@dataclass
class WorkerLog:
    """What one worker saw, reported back to the round."""

    name: str
    completed: list[tuple[int, int]] = field(default_factory=list)
    """(job_id, attempt) of every complete() that committed."""
    claim_ms: list[float] = field(default_factory=list)
    complete_ms: list[float] = field(default_factory=list)
    empty_claims: int = 0
    abandoned: list[tuple[int, int]] = field(default_factory=list)
    late_refused: int = 0
    """Write-backs of abandoned attempts refused as stale (JB001): must be all of them."""
    late_accepted: int = 0
    """Write-backs of abandoned attempts that committed: must be none."""
    stale_live: int = 0
    """Completes of a live worker refused because its lease ran out under load."""
    started: float = 0.0
    last_complete: float = 0.0
    cpu_s: float = 0.0
    error: str | None = None


def _complete(conn: Conn, plan: WorkerPlan, job: client.Job, log: WorkerLog,
              done: Any) -> None:
    before = time.monotonic()
    try:
        committed = client.complete(conn, job.job_id, job.attempt, {"by": plan.name})
    except client.StaleAttempt:
        log.stale_live += 1
        client.note_stale(conn, job.job_id, job.attempt, "complete")
        return
    now = time.monotonic()
    if committed:
        log.completed.append((job.job_id, job.attempt))
        log.complete_ms.append((now - before) * 1000)
        log.last_complete = now
        with done.get_lock():
            done.value += 1


def _loop(conn: Conn, plan: WorkerPlan, log: WorkerLog, done: Any) -> None:
    """Claim, record, complete until nothing is left (or until this worker dies)."""
    lease = timedelta(seconds=plan.lease_s)
    idle_since: float | None = None
    while True:
        before = time.monotonic()
        jobs = client.claim(conn, plan.name, kinds=[KIND], limit=plan.batch, lease=lease)
        claimed = time.monotonic()
        if not jobs:
            log.empty_claims += 1
            if not plan.patient or done.value >= plan.total:
                return
            idle_since = idle_since or claimed
            if claimed - idle_since > STALL_S:
                log.error = f"no job claimable for {STALL_S:g} s with jobs left undone"
                return
            time.sleep(POLL_S)
            continue
        idle_since = None
        log.claim_ms.append((claimed - before) * 1000)
        if plan.die_after is not None and len(log.completed) >= plan.die_after:
            log.abandoned = [(j.job_id, j.attempt) for j in jobs]
            return
        beat = claimed
        for i, job in enumerate(jobs):
            if time.monotonic() - beat > plan.lease_s / 3:  # a big batch: keep the rest leased
                for rest in jobs[i:]:
                    try:
                        client.heartbeat(conn, rest.job_id, rest.attempt, lease)
                    except client.StaleAttempt:
                        pass  # its complete is refused and counted below
                beat = time.monotonic()
            _complete(conn, plan, job, log, done)


def _come_back(plan: WorkerPlan, log: WorkerLog) -> None:
    """The dead worker, after its lease ran out, tries to write back what it abandoned."""
    time.sleep(plan.lease_s + 0.5)
    with psycopg.connect(plan.conninfo, autocommit=True, row_factory=dict_row) as conn:
        for job_id, attempt in log.abandoned:
            try:
                if client.complete(conn, job_id, attempt, {"by": plan.name, "late": True}):
                    log.late_accepted += 1
            except client.StaleAttempt:
                log.late_refused += 1
                client.note_stale(conn, job_id, attempt, "complete after its lease ran out")


def work(plan: WorkerPlan, barrier: Any, done: Any) -> WorkerLog:
    """One worker: connect, wait for the others, loop; errors are reported, not raised."""
    log = WorkerLog(plan.name)
    try:
        with psycopg.connect(plan.conninfo, autocommit=True, row_factory=dict_row) as conn:
            conn.execute("SELECT 1")
            barrier.wait(timeout=300)
            log.started = time.monotonic()
            cpu = time.process_time()
            _loop(conn, plan, log, done)
            log.cpu_s = time.process_time() - cpu
        if log.abandoned:
            _come_back(plan, log)
    except Exception as exc:  # reported in the round's checks
        log.error = f"{type(exc).__name__}: {exc}"
        if hasattr(barrier, "abort"):
            barrier.abort()
    return log


def _report(plan: WorkerPlan, barrier: Any, done: Any, out: Any) -> None:
    """A worker thread's or process's body: work, then put the log on `out`."""
    out.put(work(plan, barrier, done))


# --------------------------------------------------------------------------- one round
@contextlib.contextmanager
def _plain_main() -> Iterator[None]:
    """A bare `__main__` while worker processes start. A spawned child first re-runs the
    parent's main module (its `__spec__` name or `__file__`); in a host program that has
    run a Streamlit page as `__main__` (the app's AppTest tests do) the child would run that
    page before working, late and noisy. The workers need nothing from it."""
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = saved


def _collect(plans: list[WorkerPlan], processes: bool,
             sample: Callable[[], None]) -> tuple[list[WorkerLog], float | None]:
    """Run the workers at once; sample server waits until all have reported. Returns the
    logs and, for threads, the process's CPU seconds from the start to the end."""
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Value("q", 0)
    out: Any
    cpu_at_start: list[float] = []
    if processes:
        barrier: Any = ctx.Barrier(len(plans))
        out = ctx.Queue()
        runners: list[Any] = [ctx.Process(target=_report, args=(p, barrier, done, out))
                              for p in plans]
    else:
        barrier = threading.Barrier(len(plans),
                                    action=lambda: cpu_at_start.append(time.process_time()))
        out = queue.Queue()
        runners = [threading.Thread(target=_report, args=(p, barrier, done, out), daemon=True)
                   for p in plans]
    with _plain_main() if processes else contextlib.nullcontext():
        for r in runners:
            r.start()
    logs: list[WorkerLog] = []
    while len(logs) < len(plans):
        try:
            logs.append(out.get(timeout=SAMPLE_S))
        except queue.Empty:
            if not any(r.is_alive() for r in runners) and out.empty():
                break
            if done.value:
                sample()
    cpu_s = time.process_time() - cpu_at_start[0] if cpu_at_start else None
    for r in runners:
        r.join(30)
    return logs, cpu_s


def _enqueue(conn: Conn, projects: list[str], jobs: int,
             retry_delay: timedelta | None) -> tuple[list[int], float]:
    """Queue `jobs` no-op jobs in chunks, round-robin over the projects; ids and seconds."""
    ids: list[int] = []
    started = time.perf_counter()
    for n, first in enumerate(range(0, jobs, CHUNK)):
        size = min(CHUNK, jobs - first)
        ids += client.enqueue_many(conn, projects[n % len(projects)], KIND, [{}] * size,
                                   retry_delay=retry_delay)
    return ids, time.perf_counter() - started


def _verify(admin: Conn, ids: list[int], logs: list[WorkerLog]) -> dict[str, Any]:
    """Exactly-once, from the workers' records and from the tables."""
    completed = Counter(job_id for log in logs for job_id, _ in log.completed)
    abandoned = [a for log in logs for a in log.abandoned]
    stale_live = sum(log.stale_live for log in logs)
    db: Any = admin.execute(query("bench_queue", "verify")).fetchone()
    per_job = {int(r["attempts"]): int(r["jobs"])
               for r in admin.execute(query("bench_queue", "attempts_per_job")).fetchall()}
    n = len(ids)
    checks = {
        "every queued job completed by a worker": not set(ids) - set(completed),
        "no job completed twice": all(c == 1 for c in completed.values()),
        "no worker error": not any(log.error for log in logs),
        "every job succeeded": db["jobs"] == db["succeeded"] == n,
        "one result per job": db["results"] == n,
        "each result from the job's last attempt": db["results_of_last_attempt"] == n,
        "one succeeded attempt per job": db["attempts_succeeded"] == n,
        "no attempt left open": db["attempts_open"] == 0,
        "one attempt per job, plus one per abandoned or refused": (
            db["attempts"] == n + len(abandoned) + stale_live),
    }
    figures: dict[str, Any] = {
        "duplicates": sum(c - 1 for c in completed.values() if c > 1),
        "lost": len(set(ids) - set(completed)),
        "attempts_per_job": per_job, "stale_live": stale_live,
    }
    if abandoned:
        rows = admin.execute(query("bench_queue", "abandoned"),
                             {"ids": [job_id for job_id, _ in abandoned]}).fetchall()
        first = dict(abandoned)
        checks["every abandoned job re-run once more and its result from that run"] = (
            len(rows) == len(abandoned) and all(
                r["attempt"] == r["result_attempt"] == first[r["job_id"]] + 1
                and len(r["outcomes"]) == 2 and r["outcomes"][1] == "succeeded"
                and r["outcomes"][0] in ("expired", "stale_refused") for r in rows))
        refused = sum(log.late_refused for log in logs)
        accepted = sum(log.late_accepted for log in logs)
        checks["every late write-back refused"] = refused == len(abandoned) and accepted == 0
        figures |= {"abandoned": len(abandoned), "late_write_backs_refused": refused,
                    "late_write_backs_accepted": accepted,
                    "abandoned_outcomes": dict(Counter("/".join(r["outcomes"]) for r in rows))}
    figures["failed_checks"] = [name for name, ok in checks.items() if not ok]
    figures["exactly_once"] = not figures["failed_checks"]
    return figures


def _round(admin: Conn, worker_conninfo: str, projects: list[str], *, workers: int,
           jobs: int, batch: int, processes: bool, login: str,
           dying: int = 0) -> dict[str, Any]:
    """Fresh queue, `workers` workers at once, then the checks; the round's figures."""
    admin.execute(query("bench_queue", "empty_queue"))
    lease_s = CRASH_LEASE_S if dying else LEASE_S
    with psycopg.connect(worker_conninfo, autocommit=True, row_factory=dict_row) as conn:
        ids, enqueue_s = _enqueue(conn, projects, jobs, CRASH_RETRY if dying else None)
    admin.execute(query("bench_queue", "vacuum_jobs"))
    settle(admin)
    share = max(1, jobs // workers // 2)
    plans = [WorkerPlan(f"bench-{workers}-{i}", worker_conninfo, batch, lease_s, jobs,
                        patient=bool(dying), die_after=share if i < dying else None)
             for i in range(workers)]
    waits: Counter[str] = Counter()

    def sample() -> None:
        for r in admin.execute(query("bench_queue", "waits"), {"login": login}).fetchall():
            waits[str(r["wait"])] += int(r["sessions"])

    logs, thread_cpu = _collect(plans, processes, sample)
    figures = _verify(admin, ids, logs)
    started = min((log.started for log in logs if log.started), default=0.0)
    finished = max((log.last_complete for log in logs), default=0.0)
    wall = finished - started if started and finished > started else 0.0
    claims = [ms for log in logs for ms in log.claim_ms]
    completes = [ms for log in logs for ms in log.complete_ms]
    cpu = thread_cpu if thread_cpu is not None else sum(log.cpu_s for log in logs)
    sampled = sum(waits.values())
    return {
        "workers": workers, "dying": dying, "jobs": jobs, "batch": batch,
        "lease_s": lease_s, "seconds": round(wall, 3),
        "jobs_per_s": round(jobs / wall, 1) if wall else None,
        "claim_p50_ms": round(statistics.median(claims), 3) if claims else None,
        "claim_p95_ms": round(_percentile(claims, 0.95), 3) if claims else None,
        "complete_p50_ms": round(statistics.median(completes), 3) if completes else None,
        "claims": len(claims), "empty_claims": sum(log.empty_claims for log in logs),
        "client_cpu_pct": round(100 * cpu / wall, 1) if wall else None,
        "enqueue_s": round(enqueue_s, 3), "enqueue_jobs_per_s": round(jobs / enqueue_s, 1),
        "server_waits_pct": {w: round(100 * n / sampled, 1)
                             for w, n in waits.most_common(4)} if sampled else {},
        **figures,
        "errors": sorted({log.error for log in logs if log.error}),
    }


# --------------------------------------------------------------------------- the bench
def _worker_conninfo(target: str, settings: Settings, login: str,
                     password: str) -> tuple[str, str]:
    """The workers' conninfo (acting as `pipeline`) and its transport, in words."""
    params = conninfo_to_dict(target)
    if settings.managed:
        params |= {"host": "127.0.0.1", "user": login, "password": password}
        transport = f"loopback TCP (127.0.0.1:{params.get('port')}, scram-sha-256)"
    else:
        transport = f"SECINF_DSN's transport (host {params.get('host') or 'default'})"
    params["options"] = f"{params.get('options') or ''} -c role=pipeline".strip()
    return make_conninfo(**params), transport  # type: ignore[arg-type]


def run_queue_bench(jobs: int, worker_counts: Sequence[int], batch: int = 1,
                    processes: bool = False, crash_workers: int = 16,
                    say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every round on one scratch database; the figures (nothing printed)."""
    if jobs < 10:
        raise UserError(f"--jobs {jobs} is too few; use at least 10")
    if crash_workers == 1 or crash_workers > MAX_WORKERS:
        raise UserError(f"--crash-workers {crash_workers}: use 2 to {MAX_WORKERS} "
                        "(a quarter of them die), or 0 for no crash round")
    settings = load_settings()
    login = f"secinf_bench_queue_{os.getpid()}"
    password = secrets.token_urlsafe(24)
    rounds: list[dict[str, Any]] = []
    with scratch_database("queue", settings) as target, \
            connect(settings, conninfo=target, autocommit=True) as admin:
        projects = [str(tenancy.create_project(admin, f"bench-{plan}", "queue",
                                                plan=plan)["project_id"]) for plan in PLANS]
        # Only the managed cluster gets a login of the bench's own (SECINF_DSN's is used).
        made_login = settings.managed
        if made_login:
            admin.execute(query("bench_queue", "create_login").format(
                role=sql.Identifier(login), password=sql.Literal(password)))
        try:
            conninfo, transport = _worker_conninfo(target, settings, login, password)
            if not made_login:
                login = str(conninfo_to_dict(target).get("user") or "")
            plan = [(n, 0) for n in worker_counts]
            if crash_workers:
                plan.append((crash_workers, max(1, crash_workers // 4)))
            for workers, dying in plan:
                say(f"{workers} workers{f' ({dying} die)' if dying else ''}: {jobs:,} jobs…")
                rounds.append(_round(admin, conninfo, projects, workers=workers, jobs=jobs,
                                     batch=batch, processes=processes, login=login,
                                     dying=dying))
        finally:
            if made_login:
                admin.execute(query("bench_queue", "drop_login").format(
                    role=sql.Identifier(login)))
    base = next((r for r in rounds if r["workers"] == 1 and not r["dying"]), rounds[0])
    for r in rounds:
        r["ratio_to_base"] = (round(r["jobs_per_s"] / base["jobs_per_s"], 3)
                              if r["jobs_per_s"] and base["jobs_per_s"] else None)
    return {"jobs": jobs, "batch": batch, "runner": "processes" if processes else "threads",
            "transport": transport, "projects_by_plan": list(PLANS),
            "base_workers": base["workers"], "rounds": rounds,
            "exactly_once": all(r["exactly_once"] for r in rounds)}


def _label(r: dict[str, Any]) -> str:
    return f"{r['workers']} workers" + (f" ({r['dying']} die)" if r["dying"] else "")


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_report(report: dict[str, Any]) -> None:
    table = Table(title=f"{report['jobs']:,} no-op jobs per round, claim(limit="
                        f"{report['batch']}) → complete, one connection per worker "
                        f"({report['runner']}) over {report['transport']}",
                  caption=f"ms: per call; ratio: jobs/s ÷ {report['base_workers']} worker's; "
                          "CPU: the client's, % of one core",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("workers", "jobs/s", "claim p50", "claim p95", "dup", "lost", "once",
                "ratio", "CPU"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in report["rounds"]:
        table.add_row(f"{r['workers']}" + (f" ({r['dying']} die)" if r["dying"] else ""),
                      _fmt(r["jobs_per_s"], ",.0f"), _fmt(r["claim_p50_ms"], ".2f"),
                      _fmt(r["claim_p95_ms"], ".2f"),
                      str(r["duplicates"]), str(r["lost"]),
                      "yes" if r["exactly_once"] else "NO",
                      _fmt(r["ratio_to_base"], ".2f"), _fmt(r["client_cpu_pct"], ".0f") + "%")
    console.print(table)
    out = console.print
    rates = [r["enqueue_jobs_per_s"] for r in report["rounds"]]
    out(f"enqueue: {statistics.median(rates):,.0f} jobs/s (enqueue_many, chunks of "
        f"{CHUNK:,} over {len(PLANS)} projects: {', '.join(PLANS)}; median of rounds)",
        highlight=False)
    out("complete p50 ms: " + ", ".join(
        f"{_label(r)} {_fmt(r['complete_p50_ms'], '.2f')}" for r in report["rounds"]),
        highlight=False)
    out("client CPU with threads is the whole process's: near 100 % would mean the GIL "
        "bounds the workers", highlight=False)
    for r in report["rounds"]:
        waits = ", ".join(f"{w} {p:g} %" for w, p in r["server_waits_pct"].items())
        label = _label(r)
        if waits:
            out(f"server, {label}: {waits} of sampled active sessions", highlight=False)
        if r["failed_checks"] or r["errors"]:
            out(f"[red]{label}: failed {r['failed_checks']} {r['errors']}[/red]")
    for r in (r for r in report["rounds"] if r["dying"]):
        out(f"crash round: {r['workers']} workers, {r['dying']} died mid-run (lease "
            f"{r['lease_s']:g} s; its jobs/s includes waiting for it): {r['abandoned']} "
            f"abandoned job(s), each re-run once by another worker, attempts "
            f"{r['abandoned_outcomes']}; late write-backs refused "
            f"{r['late_write_backs_refused']}, accepted {r['late_write_backs_accepted']}; "
            f"attempts per job {r['attempts_per_job']}", highlight=False)
    verdict = "every round exactly once" if report["exactly_once"] else "[red]NOT exactly once"
    out(verdict)


def bench_queue(jobs: int, worker_counts: Sequence[int], batch: int, json_out: bool,
                processes: bool = False, crash_workers: int = 16) -> dict[str, Any]:
    """Run the bench; print a table (or JSON) and return the figures."""
    with err_console.status("queue bench…") as status:
        report = run_queue_bench(jobs, worker_counts, batch, processes, crash_workers,
                                 say=lambda m: status.update(m))
    if json_out:
        print_json(report)
    else:
        print_report(report)
    return report


