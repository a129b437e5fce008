"""The file service (workers/files) on a loopback port in a thread, for real-HTTP tests,
with a clock the test moves instead of sleeping."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI

from workers.files.local_serve import serve_in_thread


@dataclass
class Clock:
    """Unix seconds that move only when told to."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Service:
    """A running service: its base URL, and raw requests (paths sent exactly as given)."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(self, method: str, target: str, body: bytes | Iterable[bytes] | None = None,
                headers: dict[str, str] | None = None, *, chunked: bool = False) -> Reply:
        """`target` is a path+query, or a full URL whose path+query is sent verbatim."""
        if target.startswith("http"):
            parts = urlsplit(target)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif isinstance(body, bytes) and "Content-Length" not in (headers or {}):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body is not None:
                chunks = [body] if isinstance(body, bytes) else body
                try:
                    for chunk in chunks:
                        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                    if chunked:
                        conn.send(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the service answered before reading everything
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                         resp.read())
        finally:
            conn.close()


@contextmanager
def serving(app: FastAPI, **config: Any) -> Iterator[Service]:
    """Run `app` with uvicorn on 127.0.0.1 (a free port) until the block ends (the product's
    workers.files.local_serve.serve_in_thread); `config`: more uvicorn.Config settings."""
    with serve_in_thread(app, **config) as base:
        parts = urlsplit(base)
        assert parts.hostname is not None and parts.port is not None
        yield Service(parts.hostname, parts.port)
