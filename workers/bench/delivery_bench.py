"""`secinf bench delivery`: the file service against the plain paths it stands in for.

Downloads: `mb` MiB of random bytes are stored, in a LocalStorage under a temporary
directory, as the one file of a published dataset version of a scratch project. The file
service (uvicorn on a loopback port, in this process) serves it by the signed URL
api.dataset_download issues to a customer, over real HTTP, against a plain read of the same
file from disk; both read 1 MiB at a time from a warm page cache. `fetches` pairs alternate
their order; the ratio service MB/s ÷ plain MB/s is the median of the pairs (target ≥ 0.5).
Each pair also measures this machine's ceiling for any server: the file's cached pages written
to a loopback TCP socket and read by the same client loop, with no HTTP; its ratio to the
plain read bounds what the service's ratio can be on this machine.

Uploads: a simulated track CSV of `points` rows is delivered as a customer delivers it:
sha256 of the file, api.ingest_upload_url, PUT to the signed URL, api.ingest_upload_complete,
then the ingest_file job (a worker already running in this process, woken by the queue's
NOTIFY) until it succeeded, its rows in ingest.track_points. Against it: what `secinf
ingest` runs in-process (connect, temp_buffers, workers.ingest.ingest) on the same file into
a fresh source of the same project. Each phase starts after a CHECKPOINT; `repeat` pairs
alternate their order; the ratio upload-to-ingested ÷ CLI is the median of the pairs
(target ≤ 1.5), after one untimed warm-up of each path on the file's first thousand rows.
The CLI's interpreter start-up (a second or so) is not counted. The downloads run before
the worker starts, so its start-up does not compete for the CPUs.

Both ingests COPY new rows straight into the hypertable: the CLI's administrator because
row-level security does not bind it, the job's `pipeline` role as ingest_loader (migration
0025), the one role allowed to bypass RLS, which holds nothing but INSERT on the points.
"""

from __future__ import annotations

import hashlib
import http.client
import mmap
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl
import psycopg
from psycopg.types.json import Jsonb
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from workers import tenancy
from workers.appdb.session import AppDB
from workers.bench.ingest_bench import simulate_points
from workers.bench.scratch import as_authenticator, scratch_database, settle
from workers.cli.output import console, err_console, print_json
from workers.datasets.storage import sha256_file
from workers.db.connect import connect
from workers.db.queries import query
from workers.errors import SecinfError, UserError
from workers.files.app import create_app
from workers.files.local_serve import serve_in_thread
from workers.files.service_db import ServiceDB
from workers.ingest import IngestRequest, ingest
from workers.ingest.upload_job import INGEST_FILE
from workers.queue.worker import Worker, WorkerConfig
from workers.settings import Settings, load_settings
from workers.storage import LocalStorage

MIB = 1 << 20
READ = 1 << 20
"""Bytes per read, on both sides of a download (the service's own chunk is app.CHUNK)."""
TARGET_DOWNLOAD = 0.5
TARGET_UPLOAD = 1.5
VERSION = "1.0.0"
DATA_PATH = "train/bench.bin"
PROJECT = "bench/delivery"
UPLOAD_STEPS = ("hash", "upload_url", "put", "complete", "job")
"""An upload's steps: sha256 of the file, api.ingest_upload_url, the PUT,
api.ingest_upload_complete, the job from queued to succeeded."""
JOB_TIMEOUT_S = 900.0
Conn = psycopg.Connection[dict[str, Any]]



@contextmanager
def _job_storage(root: Path) -> Iterator[None]:
    """The ingest_file job reads the configured storage (workers.ingest.upload_job): the
    bench's directory, local backend, for the run; the environment is restored after."""
    names = ("SECINF_STORAGE_BACKEND", "SECINF_DATASETS_DIR")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(SECINF_STORAGE_BACKEND="local", SECINF_DATASETS_DIR=str(root))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _WorkerThread:
    """A queue worker for ingest_file jobs on a thread of this process, already listening
    before the first upload completes."""

    def __init__(self, target: str) -> None:
        self.worker = Worker(target, WorkerConfig(kinds=(INGEST_FILE,), concurrency=1,
                                                  poll_s=1.0, lease_s=60.0, grace_s=10.0))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="secinf-bench-worker")

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:
            self.error = exc

    def alive(self) -> bool:
        return self.thread.is_alive()

    def __enter__(self) -> _WorkerThread:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.worker.stop()
        self.thread.join(timeout=30)


# ---------------------------------------------------------------------- setup
def _random_file(path: Path, nbytes: int) -> str:
    """`nbytes` random bytes at `path`; their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        left = nbytes
        while left:
            block = os.urandom(min(READ, left))
            digest.update(block)
            fh.write(block)
            left -= len(block)
    return digest.hexdigest()


def _publish(admin: Conn, store: LocalStorage, project: str, data: Path, sha256: str) -> Path:
    """A published version whose one file is `data`, stored under the version's key
    prefix (as `secinf export` stores one); the stored file."""
    org = admin.execute(query("bench_delivery", "project_org"),
                        {"project_id": project}).fetchone()
    assert org is not None
    prefix = f"org/{org['org_id']}/project/{project}/datasets/events/{VERSION}"
    manifest = b'{"files": []}'
    manifest_file = data.with_name("manifest.json")
    manifest_file.write_bytes(manifest)
    store.put_file(f"{prefix}/manifest.json", manifest_file)
    store.put_file(f"{prefix}/{DATA_PATH}", data)
    version = admin.execute(query("bench_delivery", "add_version"), {
        "project_id": project, "version": VERSION, "prefix": prefix,
        "manifest_sha256": hashlib.sha256(manifest).hexdigest()}).fetchone()
    assert version is not None
    ids = {"project_id": project, "version_id": version["version_id"]}
    admin.execute(query("bench_delivery", "add_file"), {
        **ids, "path": DATA_PATH, "split": "train", "rows": 0, "bytes": data.stat().st_size,
        "sha256": sha256})
    admin.execute(query("bench_delivery", "pass_gate"), ids)
    admin.execute(query("bench_delivery", "publish"), ids)
    admin.commit()
    return store.local_path(f"{prefix}/{DATA_PATH}")


# ---------------------------------------------------------------------- downloads
def _fetch(url: str, buf: memoryview, digest: Any = None) -> tuple[float, int]:
    """Seconds and bytes to GET `url` on a new connection, reading into `buf`."""
    parts = urlsplit(url)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}")
        resp = conn.getresponse()
        if resp.status != 200:
            raise SecinfError(f"GET {parts.path}: HTTP {resp.status}: {resp.read()[:300]!r}")
        got = 0
        while n := resp.readinto(buf):
            if digest is not None:
                digest.update(buf[:n])
            got += n
    finally:
        conn.close()
    return time.perf_counter() - started, got


def _plain_read(path: Path, buf: memoryview) -> tuple[float, int]:
    """Seconds and bytes to read `path` into `buf`, start to end."""
    started = time.perf_counter()
    got = 0
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            got += n
    return time.perf_counter() - started, got


def _loopback_read(path: Path, buf: memoryview) -> tuple[float, int]:
    """Seconds and bytes to move `path` over a loopback TCP connection with no HTTP: the
    file's pages (mmap, from the page cache) written to the socket 1 MiB at a time by a
    thread of this process (as the service runs), read into `buf` by the same client loop.
    No server on this machine sends a file to a client much faster: it is the ceiling the
    service's ratio is bounded by. (sendfile() measured slower here: 0.8-1.4 GB/s against
    1.4-4 GB/s.)"""
    with socket.create_server(("127.0.0.1", 0)) as server, path.open("rb") as fh, \
            mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as pages:
        view = memoryview(pages)

        def send() -> None:
            peer, _ = server.accept()
            with peer:
                for at in range(0, len(view), READ):
                    peer.sendall(view[at:at + READ])

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        started = time.perf_counter()
        got = 0
        with socket.create_connection(server.getsockname()[:2], timeout=120) as client:
            while n := client.recv_into(buf):
                got += n
        seconds = time.perf_counter() - started
        sender.join(120)
        view.release()
    return seconds, got


def _download_pair(url: str, path: Path, buf: memoryview, size: int,
                   plain_first: bool) -> dict[str, Any]:
    times: dict[str, float] = {}
    phases = ("plain", "service", "loopback") if plain_first else ("service", "plain",
                                                                   "loopback")
    for phase in phases:
        seconds, got = {"plain": _plain_read, "loopback": _loopback_read}[phase](path, buf) \
            if phase != "service" else _fetch(url, buf)
        if got != size:
            raise SecinfError(f"{phase} read {got} bytes of {size}")
        times[phase] = seconds
    return {"service_mb_per_s": round(size / MIB / times["service"], 1),
            "plain_mb_per_s": round(size / MIB / times["plain"], 1),
            "loopback_mb_per_s": round(size / MIB / times["loopback"], 1),
            "ratio": round(times["plain"] / times["service"], 3),
            "loopback_ratio": round(times["plain"] / times["loopback"], 3),
            "of_loopback": round(times["loopback"] / times["service"], 3),
            "order": ", ".join(phases)}


def _downloads(app: AppDB, claims: dict[str, Any], path: Path, sha256: str, fetches: int,
               progress: Progress, task: Any, json_out: bool) -> dict[str, Any]:
    rows = app.request("customer", claims, query("bench_delivery", "dataset_download"),
                       {"version": VERSION})
    url = next(str(r["url"]) for r in rows if r["path"] == DATA_PATH)
    size = path.stat().st_size
    buf = memoryview(bytearray(READ))
    # Warm both paths (page cache, connections, plans), checking the bytes once.
    digest = hashlib.sha256()
    _fetch(url, buf, digest)
    if digest.hexdigest() != sha256:
        raise SecinfError(f"the service served other bytes than {DATA_PATH}'s")
    _plain_read(path, buf)
    pairs: list[dict[str, Any]] = []
    for i in range(fetches):
        pairs.append(_download_pair(url, path, buf, size, plain_first=i % 2 == 0))
        progress.advance(task)
        if not json_out:
            p = pairs[-1]
            console.print(f"download {i + 1}/{fetches} ({p['order']}): service "
                          f"{p['service_mb_per_s']:,.0f} MB/s, plain {p['plain_mb_per_s']:,.0f}"
                          f" MB/s, loopback ceiling {p['loopback_mb_per_s']:,.0f} MB/s; ratio "
                          f"{p['ratio']:.3f} (ceiling {p['loopback_ratio']:.3f})",
                          highlight=False)
    ratio = statistics.median(p["ratio"] for p in pairs)
    return {"mib": round(size / MIB, 1), "fetches": fetches,
            "service_mb_per_s": statistics.median(p["service_mb_per_s"] for p in pairs),
            "plain_mb_per_s": statistics.median(p["plain_mb_per_s"] for p in pairs),
            "loopback_mb_per_s": statistics.median(p["loopback_mb_per_s"] for p in pairs),
            "loopback_ratio": statistics.median(p["loopback_ratio"] for p in pairs),
            "of_loopback": statistics.median(p["of_loopback"] for p in pairs),
            "ratio": ratio, "ratio_min": min(p["ratio"] for p in pairs),
            "ratio_max": max(p["ratio"] for p in pairs), "target_ratio": TARGET_DOWNLOAD,
            "passed": ratio >= TARGET_DOWNLOAD, "pairs": pairs}


# ---------------------------------------------------------------------- uploads
def _put(url: str, path: Path, size: int) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=600,
                                      blocksize=READ)
    try:
        with path.open("rb") as fh:
            conn.request("PUT", f"{parts.path}?{parts.query}", body=fh,
                         headers={"Content-Length": str(size),
                                  "Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise SecinfError(f"PUT {parts.path}: HTTP {resp.status}: {body[:300]!r}")


@dataclass
class _Rig:
    """The customer's side (API calls, the HTTP client) and the CLI's, on one scratch
    project, with the worker that runs the uploads' jobs."""

    settings: Settings
    target: str
    project: str
    admin: Conn
    watch: Conn
    """Autocommit: polls the job's state."""
    app: AppDB
    claims: dict[str, Any]
    worker: _WorkerThread

    def _wait_for_job(self, job_id: int) -> dict[str, Any]:
        """The job's row once it succeeded; SecinfError when it died or the worker stopped."""
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while True:
            row = self.watch.execute(query("bench_delivery", "job_state"),
                                     {"job_id": job_id}).fetchone()
            if row is not None and row["state"] == "succeeded":
                return row
            if row is None or row["state"] in ("dead", "cancelled"):
                raise SecinfError(f"ingest_file job {job_id} is "
                                  f"{row['state'] if row else 'gone'}: "
                                  f"{row['last_error'] if row else ''}")
            if not self.worker.alive():
                raise SecinfError(f"the bench's worker stopped: {self.worker.error}")
            if time.monotonic() > deadline:
                raise SecinfError(f"ingest_file job {job_id} did not finish in "
                                  f"{JOB_TIMEOUT_S:.0f} s")
            time.sleep(0.01)

    def upload(self, csv: Path, source: str) -> dict[str, Any]:
        """Seconds of each step of one upload, from hashing the file to the job's success."""
        marks = [time.perf_counter()]
        size = csv.stat().st_size
        sha256 = sha256_file(csv)
        marks.append(time.perf_counter())
        grant = self.app.request("customer", self.claims,
                                 query("bench_delivery", "ingest_upload_url"), {
                                     "source": source, "filename": csv.name, "bytes": size,
                                     "sha256": sha256, "options": Jsonb({"units": "m"})},
                                 )[0]["answer"]
        marks.append(time.perf_counter())
        _put(str(grant["url"]), csv, size)
        marks.append(time.perf_counter())
        done = self.app.request("customer", self.claims,
                                query("bench_delivery", "ingest_upload_complete"),
                                {"upload_id": grant["upload_id"]})[0]["answer"]
        marks.append(time.perf_counter())
        row = self._wait_for_job(int(done["job_id"]))
        marks.append(time.perf_counter())
        steps = dict(zip(UPLOAD_STEPS, (round(b - a, 3) for a, b in pairwise(marks)),
                         strict=True))
        summary = (row["result"] or {}).get("ingest", {})
        return {"seconds": round(marks[-1] - marks[0], 3), "steps_s": steps,
                "ingest_s": summary.get("seconds"), "inserted": summary.get("inserted")}

    def cli(self, csv: Path, source: str) -> dict[str, Any]:
        """What `secinf ingest FILE --project bench/delivery --source S --units m` runs."""
        started = time.perf_counter()
        with connect(self.settings, conninfo=self.target) as conn:
            conn.execute("SET temp_buffers = '256MB'")
            summary = ingest(conn, IngestRequest(project=PROJECT, source=source, path=csv,
                                                 units="m"))
        return {"seconds": round(time.perf_counter() - started, 3),
                "ingest_s": round(summary.seconds, 3), "inserted": summary.inserted}

    def points(self, source: str) -> int:
        """Rows the source holds in the tracks table."""
        row = self.admin.execute(query("bench_delivery", "source_points"),
                                 {"project_id": self.project, "source": source}).fetchone()
        self.admin.commit()
        return int(row["points"]) if row else 0

    def pair(self, csv: Path, i: int, cli_first: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"order": "cli, upload" if cli_first else "upload, cli",
                               "checkpointed": True}
        for phase in (("cli", "upload") if cli_first else ("upload", "cli")):
            out["checkpointed"] = settle(self.admin) and out["checkpointed"]
            source = f"{phase}-{i}"
            out[phase] = self.cli(csv, source) if phase == "cli" else self.upload(csv, source)
            out[phase]["points"] = self.points(source)
        out["ratio"] = round(out["upload"]["seconds"] / out["cli"]["seconds"], 3)
        return out


def _uploads(rig: _Rig, csv: Path, points: int, repeat: int, progress: Progress, task: Any,
             json_out: bool) -> dict[str, Any]:
    # Untimed: the worker's start-up (plug-ins, pools), the chunks of the tracks' day and
    # the plans, on the first thousand rows.
    warm = csv.with_name("warm-up.csv")
    pl.read_csv(csv, n_rows=1000).write_csv(warm)
    rig.cli(warm, "warm-up-cli")
    rig.upload(warm, "warm-up-upload")
    pairs: list[dict[str, Any]] = []
    for i in range(repeat):
        pairs.append(rig.pair(csv, i + 1, cli_first=i % 2 == 0))
        progress.advance(task)
        p = pairs[-1]
        for phase in ("cli", "upload"):
            if p[phase]["points"] != points:
                raise SecinfError(f"{phase}-{i + 1} holds {p[phase]['points']:,} points, not "
                                  f"the file's {points:,}")
        if not json_out:
            console.print(f"upload {i + 1}/{repeat} ({p['order']}): upload-to-ingested "
                          f"{p['upload']['seconds']:.2f} s, CLI {p['cli']['seconds']:.2f} s, "
                          f"ratio {p['ratio']:.3f}", highlight=False)
    ratio = statistics.median(p["ratio"] for p in pairs)
    return {"points": points, "csv_mib": round(csv.stat().st_size / MIB, 1), "repeat": repeat,
            "upload_seconds": statistics.median(p["upload"]["seconds"] for p in pairs),
            "cli_seconds": statistics.median(p["cli"]["seconds"] for p in pairs),
            "upload_steps_s": {k: statistics.median(p["upload"]["steps_s"][k] for p in pairs)
                               for k in UPLOAD_STEPS},
            "ingest_in_job_s": statistics.median(p["upload"]["ingest_s"] or 0.0
                                                 for p in pairs),
            "ingest_in_cli_s": statistics.median(p["cli"]["ingest_s"] for p in pairs),
            "ratio": ratio, "ratio_min": min(p["ratio"] for p in pairs),
            "ratio_max": max(p["ratio"] for p in pairs), "target_ratio": TARGET_UPLOAD,
            "passed": ratio <= TARGET_UPLOAD, "pairs": pairs}


# ---------------------------------------------------------------------- the bench
def _render(result: dict[str, Any]) -> None:
    d, u = result["downloads"], result["uploads"]
    table = Table(title=f"file delivery ({d['mib']:,} MiB file x{d['fetches']}, "
                        f"{u['points']:,}-point CSV x{u['repeat']}; medians)",
                  caption="baselines: a plain read of the file from disk; `secinf ingest` "
                          "of the same CSV")
    for name, justify in (("", "left"), ("service", "right"), ("baseline", "right"),
                          ("ratio", "right"), ("pairs", "right"), ("target", "right"),
                          ("", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]

    def verdict(passed: bool) -> str:
        return "[green]pass[/green]" if passed else "[red]miss[/red]"

    table.add_row("download MB/s", f"{d['service_mb_per_s']:,.0f}", f"{d['plain_mb_per_s']:,.0f}",
                  f"{d['ratio']:.3f}", f"{d['ratio_min']:.2f}-{d['ratio_max']:.2f}",
                  f">= {TARGET_DOWNLOAD}", verdict(d["passed"]))
    table.add_row("upload→ingested s", f"{u['upload_seconds']:.2f}",
                  f"{u['cli_seconds']:.2f}", f"{u['ratio']:.3f}",
                  f"{u['ratio_min']:.2f}-{u['ratio_max']:.2f}", f"<= {TARGET_UPLOAD}",
                  verdict(u["passed"]))
    console.print(table)
    console.print(f"download ceiling of this machine: the file's pages over loopback TCP "
                  f"with no HTTP move {d['loopback_mb_per_s']:,.0f} MB/s, "
                  f"{d['loopback_ratio']:.3f} of a plain read; the service reaches "
                  f"{d['of_loopback']:.2f} of it",
                  highlight=False)
    steps = ", ".join(f"{k} {v:.2f}" for k, v in u["upload_steps_s"].items())
    console.print(f"upload steps, median s: {steps}; the ingest itself: "
                  f"{u['ingest_in_job_s']:.2f} in the job (`pipeline`, appending as "
                  f"ingest_loader), {u['ingest_in_cli_s']:.2f} in the CLI (an administrator); "
                  "both COPY new rows straight into the hypertable",
                  highlight=False)
    if not all(p["checkpointed"] for p in u["pairs"]):
        console.print("[yellow]no CHECKPOINT between phases (the role lacks pg_checkpoint): "
                      "expect noisier pairs[/yellow]")


def bench_delivery(mb: int = 64, fetches: int = 5, points: int = 300_000, repeat: int = 3,
                   json_out: bool = False) -> dict[str, Any]:
    """Run both halves in one scratch database; returns (and prints, as a table or JSON)
    the figures."""
    if points < 1000:
        raise UserError(f"--points {points} is too small to time; use at least 1000 points")
    if mb < 1 or fetches < 1 or repeat < 1:
        raise UserError("--mb, --fetches and --repeat take 1 or more")
    settings = load_settings()
    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                   transient=True, disable=json_out)
    with tempfile.TemporaryDirectory(prefix="secinf-bench-") as tmp, bar:
        root = Path(tmp)
        task = bar.add_task("simulating tracks", total=None)
        csv = root / "tracks.csv"
        pl.read_parquet(simulate_points(points, root)).write_csv(csv)
        blob = root / "bench.bin"
        blob_sha = _random_file(blob, mb * MIB)
        bar.update(task, description="scratch database")
        store = LocalStorage(root / "objects")
        with scratch_database("delivery", settings) as target, \
                connect(settings, conninfo=target) as admin, \
                connect(settings, conninfo=target, autocommit=True) as watch, \
                _job_storage(store.root):
            org, name = PROJECT.split("/")
            project = str(tenancy.create_project(admin, org, name)["project_id"])
            served = _publish(admin, store, project, blob, blob_sha)
            service = create_app(store, ServiceDB(target, max_size=4))
            app = AppDB(as_authenticator(target, settings), max_size=2)
            claims = {"role": "customer", "project_id": project, "sub": "bench-customer"}
            try:
                with serve_in_thread(service) as base_url:
                    admin.execute(query("bench_delivery", "set_base_url"),
                                  {"base_url": base_url})
                    admin.commit()
                    bar.update(task, description="downloads", total=fetches, completed=0)
                    # Before the worker starts: its start-up would compete for the CPUs.
                    downloads = _downloads(app, claims, served, blob_sha, fetches, bar, task,
                                           json_out)
                    bar.update(task, description="uploads", total=repeat, completed=0)
                    with _WorkerThread(target) as worker:
                        rig = _Rig(settings, target, project, admin, watch, app, claims,
                                   worker)
                        uploads = _uploads(rig, csv, points, repeat, bar, task, json_out)
            finally:
                app.close()
    result = {"downloads": downloads, "uploads": uploads}
    if json_out:
        print_json(result)
    else:
        _render(result)
    return result
