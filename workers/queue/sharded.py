"""One worker pool over every shard: a claim loop (a `Worker`) per shard, in one process.

Each loop's connections (claims, heartbeats, the handlers' pool, write-backs) are opened
from its own shard's conninfo and from nothing else, so a job's result can only be written
on the shard the job was claimed from: no connection to another shard exists in its
context. One SIGTERM stops every loop (finish within the grace period, else release).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from types import FrameType

from workers.queue import registry
from workers.queue.worker import Worker, WorkerConfig, WorkerStats, default_worker_id
from workers.shards import Shard

log = logging.getLogger(__name__)


@dataclass
class PoolStats(WorkerStats):
    """The counts summed over the shards, and each shard's own."""

    shards: dict[str, WorkerStats] = field(default_factory=dict)


class ShardedWorker:
    """Run one `Worker` per shard in threads; `run()` returns once every loop has ended."""

    def __init__(self, shards: Sequence[Shard], config: WorkerConfig | None = None) -> None:
        config = config or WorkerConfig()
        base = config.worker_id or default_worker_id()
        self.workers = {
            s.name: Worker(s.conninfo, replace(config, worker_id=f"{base}@{s.name}"))
            for s in shards
        }
        self._errors: dict[str, BaseException] = {}

    def stop(self, *, hard: bool = False) -> None:
        for worker in self.workers.values():
            worker.stop(hard=hard)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: every loop stops gracefully; a second one: release and exit now."""
        stopping = threading.Event()

        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("worker pool: %s, %s", signal.Signals(signum).name,
                     "releasing running jobs" if stopping.is_set() else "finishing running jobs")
            self.stop(hard=stopping.is_set())
            stopping.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _run_one(self, name: str, worker: Worker) -> None:
        try:
            worker.run()
        except BaseException as exc:  # one shard's failure stops the pool, reported below
            self._errors[name] = exc
            self.stop()

    def run(self) -> PoolStats:
        # Plug-ins are imported once, here, not by every loop's thread at the same time.
        registry.load_plugins(list(next(iter(self.workers.values())).config.plugins)
                              if self.workers else [])
        threads = [threading.Thread(target=self._run_one, args=(name, w),
                                    name=f"shard-{name}", daemon=True)
                   for name, w in self.workers.items()]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():  # join in slices: the main thread must stay signal-able
                t.join(0.5)
        if self._errors:
            raise next(iter(self._errors.values()))
        total = PoolStats()
        for name, worker in self.workers.items():
            total.shards[name] = worker.stats
            for f in dataclasses.fields(WorkerStats):
                setattr(total, f.name, getattr(total, f.name) + getattr(worker.stats, f.name))
        return total


def run_sharded(shards: Sequence[Shard], config: WorkerConfig, *,
                signals: bool = True) -> PoolStats:
    """Build the pool, install SIGTERM handling (main thread only) and run it."""
    pool = ShardedWorker(shards, config)
    if signals and threading.current_thread() is threading.main_thread():
        pool.install_signal_handlers()
    return pool.run()


__all__ = ["PoolStats", "ShardedWorker", "run_sharded"]
