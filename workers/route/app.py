"""The routing proxy's ASGI app: every path and method, sent to the shard of the request's
project (the rules are in workers/route/__init__.py); its own `GET /healthz`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from workers.errors import SecinfError, UserError
from workers.route import claims
from workers.route.claims import Refused
from workers.route.forward import Forwarder, Target
from workers.route.table import RouteTable, Upstream
from workers.settings import Settings, load_settings

log = logging.getLogger("secinf.route")
SIGN_IN_BODY_MAX = 64 * 1024
"""A key exchange or login is tried on several shards, so its body is kept: a few hundred
bytes, never more than this."""
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
READ_HEADER = "secinf-read"


def refusal(exc: Refused, files: bool) -> JSONResponse:
    """The proxy's own error, shaped as the service behind the path shapes its errors:
    the file service's {error, message, hint}, PostgREST's {code, message, details, hint}."""
    body: dict[str, str | None]
    if files:
        body = {"error": exc.code, "message": str(exc), "hint": exc.hint}
    else:
        body = {"code": exc.code, "message": str(exc), "details": None, "hint": exc.hint}
    return JSONResponse(body, status_code=exc.status)


def reads(request: Request) -> bool:
    """Whether an API request may go to the shard's read-only PostgREST: a GET or HEAD
    (PostgREST runs those in a read-only transaction anyway), unless the client asks for
    the primary with `Secinf-Read: primary` (to read its own write at once: the replica
    lags it by the replication delay)."""
    return (request.method in ("GET", "HEAD")
            and request.headers.get(READ_HEADER, "").strip().lower() != "primary")


def make_app(settings: Settings | None = None, table: RouteTable | None = None) -> Starlette:
    """The proxy over the shard map of `settings` (SECINF_SHARDS)."""
    settings = settings or load_settings()
    if settings.shards is None:
        raise UserError("no shard map: `secinf route` routes between shards, and without "
                        "SECINF_SHARDS there is one PostgREST and one file service, which "
                        "clients reach directly; set SECINF_SHARDS to the shard map's "
                        "control database to route between shards")
    routes = table or RouteTable(settings)
    forwarder = Forwarder()

    async def sign_in(request: Request) -> Response:
        body = await request.body()
        if len(body) > SIGN_IN_BODY_MAX:
            raise Refused(f"the {request.url.path} body is {len(body)} bytes",
                          f"Send at most {SIGN_IN_BODY_MAX} bytes: the key, or the user "
                          "name and password.", status=413)
        named = claims.login_project(body) if request.url.path == "/rpc/login" else None
        first = await run_in_threadpool(routes.by_reference, named) if named else None
        tries = [first] if first else await run_in_threadpool(routes.all)
        for up in tries[:-1]:
            answer = await forwarder.send(request, Target(up.shard, up.url(False)), body)
            if answer.status_code != 401:
                return answer
            await _discard(answer)  # not this shard's credentials: the next shard's turn
        last = tries[-1]
        return await forwarder.send(request, Target(last.shard, last.url(False)), body)

    async def route(request: Request) -> Response:
        path = request.url.path
        files = path.startswith((claims.FILES_PREFIX, claims.BILLING_PREFIX,
                                 claims.STRIPE_PREFIX))
        try:
            if path.startswith(claims.STRIPE_PREFIX):
                raise Refused("Stripe's webhook is not routed between shards (its events "
                              "name an organization, not a project key the proxy reads)",
                              "Point Stripe's webhook endpoint at the file service of the "
                              "shard of the organization (docs/scale.md).", status=404)
            if path.startswith(claims.FILES_PREFIX):
                project = claims.file_project(path)
                up = await run_in_threadpool(routes.project, project)
                return await forwarder.send(request, Target(up.shard, up.url(True)))
            token = claims.bearer(request.headers.get("authorization"))
            if files:  # /billing/…: the caller's shard's file service
                if token is None:
                    raise Refused(f"{path} needs the caller's token to find its shard",
                                  "Send 'Authorization: Bearer <token>' (api.exchange_key).",
                                  status=401)
                up = await run_in_threadpool(routes.project, claims.token_project(token))
                return await forwarder.send(request, Target(up.shard, up.url(True)))
            if token is None and request.method == "POST" and path in claims.SIGN_IN_PATHS:
                return await sign_in(request)
            if token is None:  # anonymous: the same schema everywhere, the first shard
                first: Upstream = (await run_in_threadpool(routes.all))[0]
                return await forwarder.send(request, Target(first.shard, first.url(False)))
            up = await run_in_threadpool(routes.project, claims.token_project(token))
            return await forwarder.send(request, Target(up.shard, up.url(False, reads(request))))
        except Refused as exc:
            log.info("refused %s %s: %s", request.method, path[:200], exc)
            return refusal(exc, files)
        except SecinfError as exc:  # the control database is unreachable, …
            return refusal(Refused(str(exc), "Check SECINF_SHARDS and the control database "
                                   "(`secinf shards list`).", status=503), files)

    async def healthz(request: Request) -> Response:
        try:
            ups = await run_in_threadpool(routes.all)
        except (Refused, SecinfError) as exc:
            return JSONResponse({"status": "unavailable", "message": str(exc)},
                                status_code=503)
        return JSONResponse({"status": "ok", "shards": [u.shard for u in ups]})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        forwarder.close()

    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"]),
                             Route("/{path:path}", route, methods=METHODS)],
                     lifespan=lifespan)


async def _discard(response: Response) -> None:
    """Read and drop a streamed answer (its upstream connection goes back to the pool)."""
    body = getattr(response, "body_iterator", None)
    if body is not None:
        async for _ in body:
            pass
