"""Stand-ins for one shard's PostgREST and file service, on loopback ports, recording every
request they get: no PostgREST binary is reachable on this machine (the real one runs in
docker/), so the API stand-in answers through tests/support/postgrest.py's request model
against the shard's own database, verifying the bearer JWT with that database's secret as
PostgREST does; the file stand-in serves deterministic bytes (single Range requests, in
chunks, one chunk held back until the test releases it) and receives uploads streamed."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.support.postgrest import Api, ApiError

CHUNK = 64 * 1024


@dataclass
class Seen:
    """The requests one stand-in received."""

    requests: list[dict[str, Any]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [f"{r['method']} {r['path']}" for r in self.requests]


def postgrest_standin(dsn: str, seen: Seen) -> FastAPI:
    """POST /rpc/{fn} and GET /{view} as PostgREST answers them, on `dsn`'s database."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT auth.active_secret()").fetchone()
    assert row is not None and row[0]
    secret = str(row[0])
    app = FastAPI()

    def caller(request: Request) -> Api:
        seen.requests.append({"method": request.method, "path": request.url.path,
                              "headers": dict(request.headers)})
        auth = request.headers.get("authorization")
        if not auth:
            return Api(dsn)
        claims = jwt.decode(auth.split()[1], secret, algorithms=["HS256"],
                            options={"verify_aud": False})
        return Api(dsn).as_(claims["role"], **{k: v for k, v in claims.items() if k != "role"})

    def answer(call: Any) -> Response:
        try:
            return JSONResponse(call())
        except ApiError as exc:
            return JSONResponse({"code": exc.sqlstate, "message": exc.message, "hint": exc.hint},
                                status_code=exc.status)

    def refused_jwt(exc: jwt.PyJWTError) -> Response:
        return JSONResponse({"code": "PGRST301", "message": f"JWT invalid: {exc}"},
                            status_code=401)

    @app.post("/rpc/{fn}")
    async def rpc(fn: str, request: Request) -> Response:
        args = await request.json()
        try:
            api = caller(request)
        except jwt.PyJWTError as exc:
            return refused_jwt(exc)
        return answer(lambda: api.rpc(fn, **args))

    @app.get("/{view}")
    async def get(view: str, request: Request) -> Response:
        try:
            api = caller(request)
        except jwt.PyJWTError as exc:
            return refused_jwt(exc)
        return answer(lambda: [{k: str(v) for k, v in r.items()} for r in api.get(view)])

    return app


def content(name: str, size: int) -> bytes:
    """The bytes the file stand-in of shard `name` serves for any key."""
    unit = hashlib.sha256(name.encode()).digest()
    return (unit * (size // len(unit) + 1))[:size]


def files_standin(name: str, seen: Seen, size: int, gate: threading.Event) -> FastAPI:
    """GET /files/{key}: `content(name, size)`, single Range requests answered 206, sent in
    CHUNK pieces; the first piece, then the rest only once `gate` is set (so a test sees
    whether a proxy passes bytes on before the upstream has finished). PUT /files/{key}:
    reads the body as it streams, answers its length and sha256. POST
    /billing/checkout-session: answers the shard's name."""
    app = FastAPI()
    body = content(name, size)

    @app.get("/files/{key:path}")
    async def download(key: str, request: Request) -> Response:
        seen.requests.append({"method": "GET", "path": request.url.path,
                              "headers": dict(request.headers)})
        start, end, status = 0, size - 1, 200
        headers = {"Accept-Ranges": "bytes"}
        wanted = request.headers.get("range")
        if wanted:
            first, _, last = wanted.removeprefix("bytes=").partition("-")
            start, end, status = int(first), min(int(last or size - 1), size - 1), 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)

        def pieces() -> Iterator[bytes]:
            part = body[start:end + 1]
            yield part[:CHUNK]
            if len(part) > CHUNK:
                if not gate.wait(20):
                    raise RuntimeError("the gate was never opened")
                for i in range(CHUNK, len(part), CHUNK):
                    yield part[i:i + CHUNK]

        return StreamingResponse(pieces(), status_code=status, headers=headers,
                                 media_type="application/octet-stream")

    @app.post("/billing/checkout-session")
    async def checkout(request: Request) -> Response:
        seen.requests.append({"method": "POST", "path": request.url.path,
                              "headers": dict(request.headers)})
        return JSONResponse({"shard": name})

    @app.put("/files/{key:path}")
    async def upload(key: str, request: Request) -> Response:
        digest, length, pieces = hashlib.sha256(), 0, 0
        async for piece in request.stream():
            digest.update(piece)
            length += len(piece)
            pieces += 1 if piece else 0
        seen.requests.append({"method": "PUT", "path": request.url.path,
                              "headers": dict(request.headers)})
        return JSONResponse({"bytes": length, "sha256": digest.hexdigest(), "pieces": pieces})

    return app
