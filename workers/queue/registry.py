"""Job kinds: a payload model (pydantic) and a handler per kind — the plug-in point.

A module declares a kind with `register_kind()` and attaches its handler with
`set_handler()` (or both at once). Workers import the modules the composition root lists
(`COMPOSITION_ROOT`.MODULES, workers/job_kinds.py) and any `--plugin` at start; a kind
declared without a handler waits in the queue for a worker that has one, and a kind nobody
declared is dead-lettered by the worker that meets it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from workers.errors import SecinfError, UserError
from workers.queue import client
from workers.queue.client import Conn, Job

if TYPE_CHECKING:
    from workers.queue.ops import QueueOps

COMPOSITION_ROOT = "workers.job_kinds"
"""The module whose `MODULES` every worker imports; named, not imported, so that the queue
package imports no domain."""

P = TypeVar("P", bound=BaseModel)
JsonResult = Mapping[str, Any] | None


class PermanentError(SecinfError):
    """The job cannot succeed however often it is retried (its target row vanished, its
    input is invalid): it goes straight to the dead letters with this message."""


class Cancelled(SecinfError):
    """The attempt was abandoned (timed out, lease lost, worker stopping)."""


@dataclass
class JobContext:
    """What a handler gets beside its payload: the job, fenced write-backs, cancellation."""

    job: Job
    worker_id: str
    connection: Callable[[], AbstractContextManager[Conn]]
    """A pooled connection (the worker's role; not autocommit)."""
    cancelled: threading.Event = field(default_factory=threading.Event)
    completed: bool = False
    """Set when the handler committed the result itself (`complete_in`)."""
    ops: QueueOps = field(default_factory=lambda: client)
    """The queue's calls: the Postgres client, or an in-memory queue in unit tests."""

    @contextmanager
    def write_back(self) -> Iterator[Conn]:
        """A fenced transaction on a pooled connection: raises client.StaleAttempt (and
        writes nothing) unless this attempt still holds the lease."""
        self.check()
        with self.connection() as conn, self.ops.write_back(conn, self.job.job_id,
                                                           self.job.attempt):
            yield conn

    def progress(self, data: Mapping[str, Any]) -> None:
        """Record progress on the job row (a fenced write-back)."""
        with self.write_back() as conn:
            self.ops.progress(conn, self.job.job_id, self.job.attempt, data)

    def complete_in(self, conn: Conn, result: Mapping[str, Any] | None = None) -> None:
        """Commit the result in the caller's write-back transaction, atomically with its
        writes; the worker then skips its own completion."""
        self.ops.complete(conn, self.job.job_id, self.job.attempt, result)
        self.completed = True

    def check(self) -> None:
        """Raise Cancelled once the worker gave this attempt up (long handlers call it)."""
        if self.cancelled.is_set():
            raise Cancelled(f"job {self.job.job_id} attempt {self.job.attempt} was abandoned")


Handler = Callable[[P, JobContext], JsonResult]


@dataclass(frozen=True)
class JobKind(Generic[P]):
    """A kind of job: how to validate its payload and who runs it."""

    name: str
    payload: type[P]
    handler: Handler[P] | None = None
    timeout_s: float = 300.0
    """An attempt running longer is abandoned and failed (retried with backoff)."""
    description: str = ""

    def parse(self, payload: Mapping[str, Any]) -> P:
        """The validated payload; PermanentError naming the fields when it is invalid."""
        try:
            return self.payload.model_validate(dict(payload))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise PermanentError(f"invalid payload for job kind {self.name!r}: {problems}") from exc


_KINDS: dict[str, JobKind[Any]] = {}
_LOCK = threading.Lock()


def register_kind(name: str, payload: type[P], handler: Handler[P] | None = None, *,
                  timeout_s: float = 300.0, description: str = "") -> JobKind[P]:
    """Declare a kind (re-declaring replaces it, keeping a handler already attached)."""
    with _LOCK:
        old = _KINDS.get(name)
        kind = JobKind(name, payload, handler or (old.handler if old else None), timeout_s,
                       description)
        _KINDS[name] = kind
        return kind


def set_handler(name: str, *, timeout_s: float | None = None
                ) -> Callable[[Handler[Any]], Handler[Any]]:
    """Decorator: attach the handler of a declared kind."""

    def attach(fn: Handler[Any]) -> Handler[Any]:
        with _LOCK:
            if name not in _KINDS:
                raise KeyError(f"job kind {name!r} is not declared: call register_kind first")
            kind = _KINDS[name]
            _KINDS[name] = replace(kind, handler=fn,
                                   timeout_s=kind.timeout_s if timeout_s is None else timeout_s)
        return fn

    return attach


def get_kind(name: str) -> JobKind[Any] | None:
    return _KINDS.get(name)


def kinds() -> dict[str, JobKind[Any]]:
    """A snapshot of every declared kind."""
    with _LOCK:
        return dict(_KINDS)


def plugin_modules() -> tuple[str, ...]:
    """The job-kind modules the composition root lists."""
    modules: tuple[str, ...] = importlib.import_module(COMPOSITION_ROOT).MODULES
    return modules


def load_plugins(extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Import the composition root's modules and `extra`; returns those loaded."""
    loaded = []
    for module in (*plugin_modules(), *extra):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if module in extra or exc.name is None or not module.startswith(exc.name):
                raise UserError(f"cannot import job plug-in {module!r}: {exc}") from exc
            continue
        loaded.append(module)
    return loaded


def validate_enqueue(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Check a payload before it is queued: UserError naming the kind and the fields."""
    declared = get_kind(kind)
    if declared is None:
        known = ", ".join(sorted(_KINDS)) or "(none)"
        raise UserError(f"unknown job kind {kind!r}: declared kinds are {known}")
    try:
        dumped: dict[str, Any] = declared.parse(payload).model_dump(mode="json")
        return dumped
    except PermanentError as exc:
        raise UserError(str(exc)) from exc
