"""Every request of the file service gets an id: the caller's `X-Request-Id` when it is a
sane one (a proxy's), else a new one. It is bound to every log line of the request
(workers/logs.py, uvicorn's access line included) and sent back as `X-Request-Id`."""

from __future__ import annotations

import re
import uuid
from typing import Any

from workers import logs

SANE = re.compile(r"[A-Za-z0-9._\-]{8,128}")
Scope = dict[str, Any]


class RequestIds:
    """Pure ASGI middleware (it wraps streaming responses without buffering them)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if SANE.fullmatch(given) else uuid.uuid4().hex

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*(message.get("headers") or []),
                                      (b"x-request-id", request_id.encode("ascii"))]
            await send(message)

        with logs.bound(request_id=request_id):
            await self.app(scope, receive, send_with_id)
