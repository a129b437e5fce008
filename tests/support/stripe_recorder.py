"""Stand-ins for Stripe, whose servers are unreachable from the tests.

* `sign`: a Stripe-Signature header made with Stripe's own scheme
  (`t=<unix>,v1=<hex HMAC-SHA256(secret, f"{t}.{payload}")>`), which the webhook verifies
  with stripe.Webhook.construct_event: the real webhook code runs on signed events.
* `StripeRecorder`: a small HTTP server on loopback that the stripe client is pointed at
  (SECINF_STRIPE_API_BASE / StripeConfig.api_base). It records every request (path,
  headers, form body) and answers canned Stripe-shaped JSON for the calls secinf makes
  (meter events, checkout sessions). Like Stripe, it answers a repeated Idempotency-Key
  with its first answer; `delay_first_s` holds the first answer back, so a test can kill
  the client after Stripe got the request and before the client learnt it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


def sign(payload: bytes, secret: str, at: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send for `payload`."""
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused: Stripe is down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    """The form-encoded body, keys as Stripe's encoding writes them (payload[value])."""


@dataclass
class StripeRecorder:
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    """First answer per Idempotency-Key (Stripe replays it for a repeated key)."""
    delay_first_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, path: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def answer(self, req: Recorded) -> tuple[int, dict[str, Any]]:
        n = len(self.requests)
        if req.path == "/v1/billing/meter_events":
            return 200, {"object": "billing.meter_event", "created": int(time.time()),
                         "event_name": req.form.get("event_name"),
                         "identifier": req.form.get("identifier"), "livemode": False,
                         "payload": {k[8:-1]: v for k, v in req.form.items()
                                     if k.startswith("payload[")},
                         "timestamp": int(req.form.get("timestamp", "0"))}
        if req.path == "/v1/checkout/sessions":
            sid = f"cs_test_{n:04d}"
            return 200, {"id": sid, "object": "checkout.session", "mode": "subscription",
                         "url": f"https://checkout.stripe.com/c/pay/{sid}",
                         "client_reference_id": req.form.get("client_reference_id"),
                         "customer": req.form.get("customer")}
        return 404, {"error": {"type": "invalid_request_error",
                               "message": f"Unrecognized request URL (POST: {req.path})"}}


@contextmanager
def recorder(delay_first_s: float = 0.0) -> Iterator[StripeRecorder]:
    """A running recorder on 127.0.0.1 (a free port) until the block ends."""
    rec = StripeRecorder(delay_first_s=delay_first_s)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode()
            req = Recorded("POST", self.path.split("?")[0],
                           {k.lower(): v for k, v in self.headers.items()},
                           dict(parse_qsl(body, keep_blank_values=True)))
            key = req.headers.get("idempotency-key")
            with rec.lock:
                first = not rec.requests
                rec.requests.append(req)
                replay = rec.answers.get(key) if key else None
            if first and rec.delay_first_s:
                time.sleep(rec.delay_first_s)
            if replay is None:
                status, doc = rec.answer(req)
                replay = (status, json.dumps(doc).encode())
                if key:
                    with rec.lock:
                        rec.answers.setdefault(key, replay)
            self.send_response(replay[0])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(replay[1])))
            if key:
                self.send_header("Idempotency-Key", key)
            self.end_headers()
            self.wfile.write(replay[1])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
