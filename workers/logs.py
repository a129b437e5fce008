"""Structured logs for the long-running processes (`secinf worker`, `secinf serve`): one JSON
object per line, with the job or request a line belongs to, and never a secret.

- `bound(job_id=…, attempt=…, project_id=…, request_id=…)` binds fields to every line logged
  inside it (a context variable: each job thread and each request task has its own).
- `redact()` removes what would let a reader act as someone: API keys (`sik_…`), JWTs,
  `Authorization: Bearer …` values, the `sig=` of a signed URL, Stripe secrets (`sk_…`,
  `whsec_…`) and `password=` settings. Every message, argument and traceback goes through it.
- `configure(fmt)` installs the formatter on the root logger and uvicorn's loggers:
  `SECINF_LOG_FORMAT` = `json` (default) or `text` for a person at a terminal.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FIELDS = ("job_id", "attempt", "kind", "project_id", "request_id", "worker")
CONTEXT: ContextVar[dict[str, Any]] = ContextVar("secinf_log_context", default={})  # noqa: B039
SECRET = re.compile(
    r"sik_[A-Za-z0-9_\-]{8,}"                                   # secinf API keys
    r"|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"     # JWTs
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]+=*"                     # Authorization values
    r"|(?<=[?&]sig=)[0-9A-Za-z]+"                               # signed URLs' signatures
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+|whsec_[A-Za-z0-9]+"  # Stripe secrets
    r"|(?i:password)\s*[=:]\s*\S+")                             # conninfo / settings
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` without anything that works as a credential."""
    return SECRET.sub(REDACTED, text)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every line logged inside carries these fields (None values are left out)."""
    token = CONTEXT.set({**CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, the bound fields, error."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": redact(record.getMessage()),
        }
        doc.update(CONTEXT.get())
        for name in FIELDS:
            if name in record.__dict__:
                doc[name] = record.__dict__[name]
        if record.exc_info:
            doc["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, default=str)


class RedactingFormatter(logging.Formatter):
    """The plain text format, redacted, with the bound fields appended."""

    def format(self, record: logging.LogRecord) -> str:
        bound_fields = " ".join(f"{k}={v}" for k, v in CONTEXT.get().items())
        text = super().format(record)
        return redact(f"{text} [{bound_fields}]" if bound_fields else text)


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    from workers.errors import UserError

    raise UserError(f"SECINF_LOG_FORMAT={fmt!r}: use json or text")


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    """Send every log line (uvicorn's included) to stderr in `fmt`, redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    route_uvicorn()
    logging.getLogger("psycopg").setLevel(logging.WARNING)


def route_uvicorn() -> None:
    """uvicorn's loggers (its access line included) hand their records to the root logger's
    handler instead of their own (uvicorn runs with log_config=None)."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
        lg.disabled = False
