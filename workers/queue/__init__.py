"""The work queue: leases, fenced write-backs, retries with backoff, dead letters.

Public API: `client` (enqueue, claim, heartbeat, complete, fail, release, write_back),
`registry` (register_kind, set_handler, JobContext, PermanentError), `Worker`.
See docs/queue.md.
"""

from workers.queue.client import Job, StaleAttempt
from workers.queue.registry import JobContext, PermanentError, register_kind, set_handler

__all__ = ["Job", "JobContext", "PermanentError", "StaleAttempt", "register_kind", "set_handler"]
