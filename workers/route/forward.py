"""Forward one HTTP request to an upstream and stream its answer back (urllib3, the HTTP
client requests and botocore are built on: already installed, and it streams both ways).

Bodies are never read whole: the request body is sent as it arrives (with its
Content-Length, else chunked), the answer is passed on in chunks as the upstream sends it,
undecoded (a gzip answer stays gzip), with its status and headers (206 and Content-Range
of a Range request included). Hop-by-hop headers are dropped; X-Forwarded-For, -Host and
-Proto are set as a proxy does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import anyio.from_thread
import urllib3
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from workers.route.claims import Refused

CHUNK = 1 << 16
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 300.0
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "trailers",
                        "transfer-encoding", "upgrade", "host"})


@dataclass(frozen=True)
class Target:
    """Where a request goes: the shard (for messages and the X-Secinf-Shard header) and the
    upstream's base URL."""

    shard: str
    base_url: str


class Forwarder:
    """A pool of upstream connections shared by every request of the proxy."""

    def __init__(self, maxsize: int = 32) -> None:
        self.pool = urllib3.PoolManager(
            maxsize=maxsize, block=False, retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S))

    def close(self) -> None:
        self.pool.clear()

    def headers(self, request: Request) -> list[tuple[str, str]]:
        """The request's headers for the upstream: hop-by-hop ones out, X-Forwarded-* in."""
        out = [(k, v) for k, v in request.headers.items()
               if k.lower() not in HOP_BY_HOP and not k.lower().startswith("x-forwarded-")]
        client = request.client.host if request.client else ""
        before = request.headers.get("x-forwarded-for")
        out.append(("X-Forwarded-For", f"{before}, {client}" if before else client))
        out.append(("X-Forwarded-Host", request.headers.get("host", "")))
        out.append(("X-Forwarded-Proto", request.url.scheme))
        return out

    async def send(self, request: Request, target: Target,
                   body: bytes | None = None) -> Response:
        """Forward `request` (its body as it streams in, or `body` when buffered)."""
        url = target.base_url + request.url.path + (
            f"?{request.url.query}" if request.url.query else "")
        headers = urllib3.HTTPHeaderDict()
        for k, v in self.headers(request):
            headers.add(k, v)
        chunked = False
        payload: bytes | Iterator[bytes] | None = body
        if body is not None:
            headers.discard("content-length")
            headers["Content-Length"] = str(len(body))
        elif "content-length" in request.headers or "transfer-encoding" in request.headers:
            payload = _body_from(request)
            chunked = "content-length" not in request.headers

        def call() -> urllib3.BaseHTTPResponse:
            try:
                return self.pool.urlopen(request.method, url, body=payload, headers=headers,
                                         chunked=chunked, redirect=False,
                                         preload_content=False, decode_content=False)
            except urllib3.exceptions.HTTPError as exc:
                raise Refused(
                    f"shard {target.shard}: its upstream {target.base_url} did not answer "
                    f"({type(exc).__name__}: {str(exc)[:200]})",
                    f"Check that service, or its URL in `secinf shards list` (change it "
                    f"with `secinf shards add {target.shard} CONNINFO --api-url/--files-url "
                    "URL`).", status=502) from exc

        upstream = await run_in_threadpool(call)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1"))
               for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
        raw.append((b"x-secinf-shard", target.shard.encode()))
        response = StreamingResponse(_stream(upstream), status_code=upstream.status)
        response.raw_headers = raw
        return response


def _body_from(request: Request) -> Iterator[bytes]:
    """The request body as a blocking iterator, for the upstream call's worker thread: each
    chunk is awaited on the event loop (anyio.from_thread)."""
    stream = request.stream().__aiter__()

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while True:
        chunk = anyio.from_thread.run(next_chunk)
        if chunk is None:
            return
        if chunk:
            yield chunk


async def _stream(upstream: urllib3.BaseHTTPResponse) -> AsyncIterator[bytes]:
    """The upstream's body in chunks as it arrives; its connection back to the pool at the
    end, or closed when the client went away first."""
    finished = False
    try:
        async for chunk in iterate_in_threadpool(upstream.stream(CHUNK, decode_content=False)):
            yield chunk
        finished = True
    finally:
        if finished:
            upstream.release_conn()
        else:
            upstream.close()
