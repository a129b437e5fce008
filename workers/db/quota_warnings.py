"""The database's quota warnings (billing.check_quota, past 80 % of a quota) for CLI callers.

`billing.check_quota` raises a WARNING that starts with "quota warning:"; psycopg hands it to
notice handlers. `QuotaWarnings.collecting(conn)` gathers them while work runs, so the caller
can print them once the work has committed (docs/billing.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.errors import Diagnostic

PREFIX = "quota warning: "


class QuotaWarnings:
    """The distinct quota warnings seen on a connection, in order."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def _handle(self, diag: Diagnostic) -> None:
        text = diag.message_primary or ""
        if text.startswith(PREFIX):
            message = text[len(PREFIX):]
            if message not in self.messages:
                self.messages.append(message)

    @contextmanager
    def collecting(self, conn: psycopg.Connection[Any]) -> Iterator[QuotaWarnings]:
        conn.add_notice_handler(self._handle)
        try:
            yield self
        finally:
            conn.remove_notice_handler(self._handle)
