"""The file service (issue 17): serves and receives the objects of signed URLs.

    GET /files/{key}   download (local backend: streamed, with single Range requests;
                       S3 backend: 302 to S3's presigned URL, the service is not in the path)
    PUT /files/{key}   upload exactly the signed bytes with the signed sha256, then
                       files.mark_received; a repeated PUT of the same bytes changes nothing
                       (S3 backend: 307 to S3's presigned PUT of that size and checksum,
                       files.mark_sent; the ingest_file job checks the receipt)
    POST /stripe/webhook, POST /billing/checkout-session
                       Stripe's events and plan checkouts (workers/billing/routes.py)
    GET /healthz       the service and its database
    GET /openapi.json  this API
    GET /metrics       Prometheus metrics: requests by route and status, bytes sent
                       (workers/metrics.py; not an API route, so not in the document)

Every download served or refused and every upload received or refused is an audit row
(files.record_access, with the client's address). Errors are JSON {"error", "message",
"hint"}; see docs/files.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, BinaryIO, cast

import anyio.from_thread
import psycopg
from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from workers.billing.routes import BillingService, stripe_router
from workers.errors import DatabaseUnavailable
from workers.files import signing
from workers.files.ranges import RangeNotSatisfiable, parse_range
from workers.files.request_ids import RequestIds
from workers.files.service_db import ServiceDB, Upload
from workers.files.signing import BadKey, FileRefused, MalformedUrl, SignedRequest, verify
from workers.metrics import RequestMetrics, metrics_endpoint
from workers.settings import Settings, load_settings
from workers.storage import BadKey as StorageBadKey
from workers.storage import ObjectMissing, S3Storage, Storage, storage_from_settings
from workers.storage import TooLarge as StorageTooLarge
from workers.storage.s3 import MAX_EXPIRES_S

log = logging.getLogger("secinf.files")
CHUNK = 1 << 20


# ---------------------------------------------------------------------- refusals
class NotFoundObject(FileRefused):
    """No object is stored under this key."""

    status = 404
    code = "not_found"
    hint = "The file was removed, or the upload was never completed."


class NoUpload(FileRefused):
    """No upload was issued for this key."""

    status = 404
    code = "no_upload"
    hint = "Ask for an upload URL with api.ingest_upload_url."


class TooLarge(FileRefused):
    """The body is larger than the URL allows."""

    status = 413
    code = "too_large"
    hint = "Send exactly the number of bytes the upload URL was issued for."


class Incomplete(FileRefused):
    """The body is shorter than the URL was signed for."""

    code = "incomplete"
    hint = "Send the whole file: exactly the number of bytes the upload URL was issued for."


class HashMismatch(FileRefused):
    """The body's sha256 is not the one the URL was signed for."""

    status = 422
    code = "hash_mismatch"
    hint = "Upload the file whose sha256 you asked the URL for (sha256sum FILE), or ask "\
           "for a new URL with the right hash."


class ChecksumHeader(FileRefused):
    """S3 backend: the PUT lacks the checksum header S3 will check, or it is not the signed
    sha256's."""

    code = "checksum_header"
    hint = "Send the headers ingest_upload_url returned (x-amz-checksum-sha256: the base64 " \
           "of the file's sha256) and follow the 307 redirect with them."


class AlreadyComplete(FileRefused):
    """S3 backend: the upload was completed already; S3 would overwrite what is ingested."""

    status = 409
    code = "already_complete"
    hint = "Nothing to send: the upload was completed (api.ingest_upload_complete)."


class Disconnected(FileRefused):
    """The client went away before the upload was complete."""

    code = "client_disconnected"
    hint = "Send the file again to the same URL (while it is valid)."


class Unavailable(FileRefused):
    """The file service cannot reach its database."""

    status = 503
    code = "database_unavailable"
    hint = "Try again shortly; the operator should check `secinf db status`."


_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PARAMETERS: dict[str, dict[str, Any]] = {
    # Segments in the document never start with '.' (so never '.' or '..'); the service
    # accepts what files.valid_key does.
    "key": {"pattern": rf"^org/{_UUID}/project/{_UUID}"
                       r"(/[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}){1,8}$"},
    "expires": {"pattern": r"^[0-9]{1,19}$", "description": "unix seconds (signed)"},
    "kid": {"pattern": r"^[a-z0-9]{1,32}$"},
    "sig": {"pattern": r"^[0-9a-f]{64}$"},
    "bytes": {"pattern": r"^[0-9]{1,19}$"},
    "sha256": {"pattern": r"^[0-9a-f]{64}$"},
    "range": {"pattern": r"^bytes=([0-9]{1,19}-[0-9]{0,19}|-[0-9]{1,19})$"},
    "x-amz-checksum-sha256": {"pattern": r"^[A-Za-z0-9+/]{43}=$"},
}
"""The documented form of each parameter of /files/{key}."""


class ErrorBody(BaseModel):
    """Every refusal: what went wrong and how to fix it."""

    error: str
    message: str
    hint: str


class Received(BaseModel):
    """An upload stored with its signed size and hash."""

    key: str
    bytes: int
    sha256: str
    status: str
    """The upload's status (received, or later: queued, ingested, failed)."""
    repeated: bool
    """True when the same bytes had been received before (nothing was written again)."""


class Health(BaseModel):
    status: str
    database: str


def _error(exc: FileRefused, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=exc.code, message=str(exc), hint=exc.hint)
    return JSONResponse(body.model_dump(), status_code=exc.status, headers=headers)


def _doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {400: "malformed URL, key or body", 403: "expired, tampered, unknown key "
                    "id or wrong method", 404: "no such object or upload", 405: "method not "
                    "allowed", 409: "S3 backend: the upload was completed already",
                    413: "body over the signed size", 416: "range not satisfiable",
                    422: "body's sha256 is not the signed one", 503: "database unavailable"}
    return {s: {"model": ErrorBody, "description": descriptions[s]} for s in statuses}


# ---------------------------------------------------------------------- upload body
class _SignedBody(io.RawIOBase):
    """The request body as a blocking file for storage's put_stream (read in a worker
    thread, chunks pulled from the event loop): counts and hashes what passes, and raises
    instead of ending when the body is longer, shorter or other than signed, so the backend
    never keeps a wrong object."""

    def __init__(self, chunks: AsyncIterator[bytes], nbytes: int, sha256: str) -> None:
        self._chunks = chunks
        self._want_bytes = nbytes
        self._want_sha = sha256
        self._buf = b""
        self._done = False
        self.count = 0
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return b""
        except ClientDisconnect as exc:
            raise Disconnected() from exc

    def _fill(self) -> None:
        while not self._buf and not self._done:
            chunk = anyio.from_thread.run(self._next)
            if not chunk:
                self._done = True
                self.finish()
                return
            self.count += len(chunk)
            if self.count > self._want_bytes:
                raise TooLarge(f"the body is over the {self._want_bytes} bytes this URL "
                               "allows")
            self.hash.update(chunk)
            self._buf = chunk

    def finish(self) -> None:
        """At the end of the body: refuse a short or different one."""
        if self.count < self._want_bytes:
            raise Incomplete(f"the body is {self.count} bytes, not the {self._want_bytes} "
                             "this URL was signed for")
        if self.hash.hexdigest() != self._want_sha:
            raise HashMismatch(f"the body's sha256 is {self.hash.hexdigest()}, not "
                               f"{self._want_sha}")

    def readinto(self, buffer: Any) -> int:
        self._fill()
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def read(self, size: int = -1) -> bytes:
        self._fill()
        if size is None or size < 0 or size >= len(self._buf):
            out, self._buf = self._buf, b""
            return out
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def drain(self) -> None:
        """Read (count, hash) the whole body without storing it."""
        while not self._done:
            self._fill()
            self._buf = b""


def _refusal_in(exc: BaseException) -> FileRefused | None:
    """A refusal our body reader raised, however the backend wrapped it."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, FileRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


# ---------------------------------------------------------------------- the app
def create_app(store: Storage, db: ServiceDB, *,
               clock: Callable[[], float] = time.time,
               billing: BillingService | None = None) -> FastAPI:
    """The service over one storage backend and database; `clock` (unix seconds) decides
    expiry, so tests move it instead of sleeping; `billing`: Stripe's routes (None: they
    answer 503 naming the settings)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        db.open()
        try:
            yield
        finally:
            db.close()

    app = FastAPI(title="secinf file service", version="1.0.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None, redirect_slashes=False,
                  description="Downloads and uploads by signed URL (docs/files.md).")
    locks = _KeyLocks()
    app.add_middleware(RequestMetrics, routes=lambda: app.router.routes)
    app.add_middleware(RequestIds)  # outermost: the id covers every line of the request
    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)

    def address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def audit(key: str, method: str, result: str, request: Request, **details: Any) -> None:
        # A key refused for its form is recorded as "bad key: …": files.record_access
        # would try to read a project out of it.
        target = key if details.get("reason") != BadKey.code else f"bad key: {key}"
        db.record_access(target, method, result, address(request),
                         {k: v for k, v in details.items() if v is not None})

    def refuse(key: str, method: str, request: Request, exc: FileRefused,
               **details: Any) -> JSONResponse:
        """Audit the refusal, then answer it (503 when even the audit cannot be written)."""
        if not isinstance(exc, Unavailable):
            try:
                audit(key, method, "refused", request, reason=exc.code, status=exc.status,
                      **details)
            except DatabaseUnavailable as dbexc:
                log.warning("refused %s %s (%s) but could not audit it: %s", method,
                            key[:200], exc.code, dbexc)
                return _error(Unavailable(str(dbexc)))
        headers = ({"Content-Range": f"bytes */{exc.size}"}
                   if isinstance(exc, RangeNotSatisfiable) else None)
        return _error(exc, headers)

    def check(method: str, key: str, request: Request) -> SignedRequest:
        return verify(method, key, dict(request.query_params), db.url_secret, clock)

    @contextmanager
    def guarded() -> Iterator[None]:
        try:
            yield
        except DatabaseUnavailable as exc:
            raise Unavailable(str(exc)) from exc

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        hint = ("The service answers GET and PUT on /files/{key} (signed URLs), POST "
                "/stripe/webhook, POST /billing/checkout-session, GET /healthz, GET "
                "/openapi.json and GET /metrics.")
        return JSONResponse(ErrorBody(error=code, message=str(exc.detail), hint=hint)
                            .model_dump(), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(MalformedUrl(f"the request is malformed: {str(exc)[:200]}"))

    @app.get("/healthz", response_model=Health, responses=_doc(503))
    def healthz() -> Response:
        """The service is up; `database` says whether it reaches Postgres."""
        try:
            db.ping()
        except DatabaseUnavailable:
            return JSONResponse(Health(status="degraded", database="unavailable")
                                .model_dump(), status_code=503)
        return JSONResponse(Health(status="ok", database="ok").model_dump())

    # ------------------------------------------------------------------ downloads
    @app.get("/files/{key:path}", response_class=Response,
             responses={200: {"content": {"application/octet-stream": {}},
                              "description": "the whole object"},
                        206: {"content": {"application/octet-stream": {}},
                              "description": "one byte range (Content-Range)"},
                        302: {"description": "S3 backend: its presigned URL (Location)"},
                        **_doc(400, 403, 404, 416, 503)})
    def download(
        key: str, request: Request,
        method: str | None = Query(None, description="GET (signed)"),
        expires: str | None = Query(None, description="unix seconds (signed)"),
        kid: str | None = Query(None, description="signing key id"),
        sig: str | None = Query(None, description="hex HMAC-SHA256 of the canonical text"),
        range_: str | None = Header(None, alias="range",
                                    description="bytes=a-b, bytes=a- or bytes=-n"),
    ) -> Response:
        """Download the object of a signed GET URL."""
        try:
            with guarded():
                req = check("GET", key, request)
                if isinstance(store, S3Storage):
                    # S3 serves it (ranges included): its own URL, for what is left of ours.
                    left = min(max(int(req.expires - clock()), 1), MAX_EXPIRES_S)
                    location = store.presigned_get(key, left, key.rsplit("/", 1)[-1])
                    # Metered as the object's size: S3 serves the bytes, we never see them.
                    audit(key, "GET", "served", request, backend="s3", redirect=True,
                          sent=_size(store, key))
                    return RedirectResponse(location, status_code=302)
                size = _size(store, key)
                span = parse_range(range_, size)
                etag = db.object_sha256(key)
                fh = _open(store, key)
                try:
                    audit(key, "GET", "served", request, bytes=size,
                          sent=size if span is None else span[1] - span[0] + 1,
                          range=None if span is None else f"{span[0]}-{span[1]}")
                except BaseException:
                    fh.close()
                    raise
        except FileRefused as exc:
            return refuse(key, "GET", request, exc, range=range_)
        start, end = (0, size - 1) if span is None else span
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Length": str(end - start + 1 if size else 0),
            "Content-Disposition": f'attachment; filename="{key.rsplit("/", 1)[-1]}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        }
        if etag is not None:  # the recorded sha256 of a dataset file or an upload
            headers["ETag"] = f'"{etag}"'
        if span is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return StreamingResponse(_stream(fh, start, end + 1), status_code=206 if span else 200,
                                 headers=headers, media_type="application/octet-stream")

    # ------------------------------------------------------------------ uploads
    @app.put("/files/{key:path}", response_model=Received,
             responses={307: {"description": "S3 backend: its presigned PUT (Location)"},
                        **_doc(400, 403, 404, 409, 413, 422, 503)},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}})
    async def upload(
        key: str, request: Request,
        method: str | None = Query(None, description="PUT (signed)"),
        expires: str | None = Query(None, description="unix seconds (signed)"),
        kid: str | None = Query(None, description="signing key id"),
        bytes_: str | None = Query(None, alias="bytes", description="exact size (signed)"),
        sha256: str | None = Query(None, description="sha256 of the body (signed)"),
        sig: str | None = Query(None, description="hex HMAC-SHA256 of the canonical text"),
        checksum: str | None = Header(
            None, alias="x-amz-checksum-sha256",
            description="base64 of the sha256's bytes (ingest_upload_url's headers); "
                        "required with the S3 backend"),
    ) -> Response:
        """Upload the file of a signed PUT URL: exactly its bytes with its sha256."""
        try:
            if isinstance(store, S3Storage):
                return await run_in_threadpool(_send_to_s3, store, key, request)
            return await _receive(key, request)
        except FileRefused as exc:
            return await run_in_threadpool(refuse, key, "PUT", request, exc)

    def issued_upload(key: str, request: Request) -> tuple[SignedRequest, Upload]:
        """The signed PUT and its upload, after the checks both backends make first."""
        req = check("PUT", key, request)
        assert req.bytes is not None and req.sha256 is not None
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise MalformedUrl("Content-Length is not a number")
            if int(declared) > req.bytes:
                raise TooLarge(f"the body is {declared} bytes, over the {req.bytes} "
                               "this URL allows")
            if int(declared) < req.bytes:
                raise Incomplete(f"the body is {declared} bytes, not the {req.bytes} "
                                 "this URL was signed for")
        checksum = request.headers.get("x-amz-checksum-sha256")
        if checksum is not None and checksum != signing.checksum_header(req.sha256):
            raise HashMismatch(f"x-amz-checksum-sha256 {checksum[:100]!r} is not the sha256 "
                               f"{req.sha256} this URL was signed for")
        row = db.upload(key)
        if row is None or (row.bytes, row.sha256) != (req.bytes, req.sha256):
            raise NoUpload(f"no upload of {req.bytes} bytes with sha256 {req.sha256} "
                           f"was issued for {key!r}")
        return req, row

    def _send_to_s3(s3: S3Storage, key: str, request: Request) -> Response:
        """S3 backend: send the client on to S3's presigned PUT of exactly the signed size
        and checksum (S3 checks both); the service never holds the bytes."""
        with guarded():
            req, row = issued_upload(key, request)
            assert req.bytes is not None and req.sha256 is not None
            if request.headers.get("x-amz-checksum-sha256") is None:
                raise ChecksumHeader("S3 checks the upload's checksum, so the PUT must "
                                     "carry the header x-amz-checksum-sha256: "
                                     f"{signing.checksum_header(req.sha256)}")
            if row.status not in ("issued", "sent"):
                raise AlreadyComplete(f"upload {key!r} is {row.status}")
            left = min(max(int(req.expires - clock()), 1), MAX_EXPIRES_S)
            target = s3.presigned_put(key, left, req.bytes, req.sha256,
                                      encryption_header=False)
            db.mark_sent(key, req.bytes, req.sha256)
            audit(key, "PUT", "redirected", request, backend="s3", bytes=req.bytes,
                  sha256=req.sha256)
        return RedirectResponse(target.url, status_code=307)

    async def _receive(key: str, request: Request) -> Response:
        def before() -> tuple[SignedRequest, bool]:
            with guarded():
                req, row = issued_upload(key, request)
                assert req.bytes is not None and req.sha256 is not None
                stored = False
                if row.status != "issued":
                    try:
                        stored = _size(store, key) == req.bytes
                    except NotFoundObject:
                        stored = False
                return req, stored

        req, stored = await run_in_threadpool(before)
        assert req.bytes is not None and req.sha256 is not None
        body = _SignedBody(request.stream().__aiter__(), req.bytes, req.sha256)
        async with locks.hold(key):
            try:
                if stored:
                    # Received before: check the bytes, write nothing (an ingest may be
                    # reading the object).
                    await run_in_threadpool(body.drain)
                else:
                    got = await run_in_threadpool(store.put_stream, key, cast(BinaryIO, body),
                                            req.bytes)
                    if got != (req.bytes, req.sha256):
                        raise HashMismatch(f"storage holds {got[0]} bytes with sha256 "
                                           f"{got[1]}, not what was signed")
            except FileRefused:
                raise
            except StorageTooLarge as exc:
                raise TooLarge(f"the body is over the {req.bytes} bytes this URL allows") \
                    from exc
            except StorageBadKey as exc:
                raise BadKey(str(exc)) from exc
            except Exception as exc:
                refusal = _refusal_in(exc)
                if refusal is None:
                    raise
                raise refusal from exc

        def after() -> str:
            with guarded():
                try:
                    now = db.mark_received(key, req.bytes or 0, req.sha256 or "")
                except psycopg.errors.NoDataFound as exc:
                    raise NoUpload(f"no upload was issued for {key!r}") from exc
                audit(key, "PUT", "received", request, bytes=req.bytes, sha256=req.sha256,
                      repeated=stored or None)
                return now

        now = await run_in_threadpool(after)
        return JSONResponse(Received(key=key, bytes=req.bytes, sha256=req.sha256, status=now,
                                     repeated=stored).model_dump())

    app.include_router(stripe_router(billing, ErrorBody))

    def openapi() -> dict[str, Any]:
        """FastAPI's document with each parameter's exact form (this service parses them
        itself, answering 400 malformed_url, so FastAPI neither validates them nor adds its
        422 for validation)."""
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            for path, ops in doc["paths"].items():
                for method, op in ops.items():
                    if not (path == "/files/{key}" and method == "put"):
                        op["responses"].pop("422", None)
                    for param in op.get("parameters", []):
                        form = PARAMETERS.get(param["name"])
                        if form is not None and path == "/files/{key}":
                            param["schema"] = {"type": "string", **form}
                            param["required"] = param["in"] != "header"
                        if param["name"] == "method":
                            param["schema"] = {"type": "string", "enum": [method.upper()]}
                            param["required"] = True
            for name in ("HTTPValidationError", "ValidationError"):
                doc.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _size(store: Storage, key: str) -> int:
    """The object's size; the service's refusals for a missing object or a refused key."""
    try:
        return store.size(key)
    except ObjectMissing as exc:
        raise NotFoundObject(f"no object is stored under {key!r}") from exc
    except StorageBadKey as exc:
        raise BadKey(str(exc)) from exc


def _open(store: Storage, key: str) -> BinaryIO:
    try:
        return store.open_read(key)
    except ObjectMissing as exc:
        raise NotFoundObject(f"no object is stored under {key!r}") from exc


def _stream(fh: BinaryIO, start: int, stop: int) -> Iterator[bytes]:
    """Bytes start..stop-1 of an open object, in CHUNK pieces; closes it."""
    with fh:
        if start:
            fh.seek(start)
        left = stop - start
        while left > 0:
            block = fh.read(min(CHUNK, left))
            if not block:
                return
            left -= len(block)
            yield block


class _KeyLocks:
    """One upload of a key at a time in this process (a second PUT waits for the first)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def app_from_settings(settings: Settings | None = None) -> FastAPI:
    """The service over the configured storage backend and database (`secinf serve`)."""
    s = settings or load_settings()
    return create_app(storage_from_settings(s), ServiceDB(s.conninfo()),
                      billing=BillingService.from_settings(s))
