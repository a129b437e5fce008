"""Run requests the way PostgREST does, without PostgREST.

Per request: one transaction, READ ONLY for GET and for POST /rpc/ of a STABLE or
IMMUTABLE function (PostgREST's access modes: docs.postgrest.org/en/v12/references/
transactions.html); the impersonated role's own settings (`ALTER ROLE … SET`, e.g.
statement_timeout) as transaction-local ones, as PostgREST ≥ 11.1 applies them;
`SET LOCAL ROLE <role>`; `request.jwt.claims` (and the method, path and headers) set with
`set_config(..., true)`; the pre-request function; then the query against the `api` schema;
then `response.headers` read back as the response's headers (`Api.last_headers`).
Errors map to HTTP statuses as PostgREST maps SQLSTATEs; SQLSTATE `PGRST` errors carry
their own body (MESSAGE) and status and headers (DETAIL) as JSON, as PostgREST reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from workers.db.queries import query

ROLES = ("anon", "customer", "reviewer", "analyst", "project_admin")
# PostgREST's query for the impersonated role's settings: the one the review app runs too.
ROLE_SETTINGS = query("app", "role_settings")


def http_status(sqlstate: str | None, role: str) -> int:
    """PostgREST's mapping of SQLSTATEs to HTTP statuses (the subset secinf raises)."""
    if sqlstate is None:
        return 500
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    table = {"23505": 409, "23503": 409, "P0002": 404, "42883": 404, "42P01": 404,
             "28P01": 403, "28000": 403, "57014": 504, "25006": 405}
    if sqlstate in table:
        return table[sqlstate]
    if sqlstate[:2] in ("22", "23"):
        return 400
    return 400 if sqlstate.startswith("P0") else 500


def response_headers(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, str]:
    """response.headers of the transaction (a JSON array of one-key objects), as a dict."""
    row = conn.execute("SELECT current_setting('response.headers', true) AS h").fetchone()
    raw = row["h"] if row else None
    out: dict[str, str] = {}
    for item in json.loads(raw) if raw else []:
        out.update({str(k): str(v) for k, v in item.items()})
    return out


def api_error(exc: psycopg.Error, role: str) -> ApiError:
    """The error response PostgREST makes of a database error. SQLSTATE PGRST: the MESSAGE
    is the body ({code, message, details, hint}) and the DETAIL the status and headers."""
    diag = exc.diag
    if diag.sqlstate == "PGRST":
        body = json.loads(diag.message_primary or "{}")
        meta = json.loads(diag.message_detail or "{}")
        return ApiError(int(meta["status"]), body.get("code"), body.get("message", ""),
                        body.get("hint"), {str(k): str(v) for k, v in
                                           (meta.get("headers") or {}).items()},
                        body.get("details"))
    return ApiError(http_status(diag.sqlstate, role), diag.sqlstate,
                    diag.message_primary or str(exc), diag.message_hint,
                    details=diag.message_detail)


# (dsn, function) → provolatile, looked up once per database and function.
_VOLATILITY: dict[tuple[str, str], str] = {}


@dataclass
class ApiError(Exception):
    status: int
    sqlstate: str | None
    message: str
    hint: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    details: str | None = None

    def __str__(self) -> str:
        return f"HTTP {self.status} ({self.sqlstate}): {self.message}"


@dataclass
class Api:
    """A PostgREST stand-in bound to one database. `claims=None` means anonymous."""

    dsn: str
    role: str = "anon"
    claims: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    last_headers: dict[str, str] = field(default_factory=dict)
    """The response headers of the last request (response.headers; a refusal's own)."""

    def as_(self, role: str, **claims: Any) -> Api:
        return Api(self.dsn, role, {"role": role, **claims} if role != "anon" else None)

    # ------------------------------------------------------------------ requests
    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        # PostgREST logs in as `authenticator`; so do we (trust on the local socket).
        # Autocommit: each transaction() block is BEGIN … COMMIT, its first statement ours.
        params = conninfo_to_dict(self.dsn)
        params["user"] = "authenticator"
        params.pop("password", None)
        return psycopg.connect(make_conninfo(**params), row_factory=dict_row,  # type: ignore[arg-type]
                               autocommit=True)

    def request(self, method: str, path: str, query: sql.Composable,
                params: dict[str, Any] | None = None, *,
                read_only: bool | None = None) -> list[dict[str, Any]]:
        """One request; READ ONLY for GET and HEAD unless `read_only` says otherwise."""
        if read_only is None:
            read_only = method in ("GET", "HEAD")
        self.last_headers = {}
        with self._connect() as conn:
            try:
                with conn.transaction():
                    if read_only:
                        conn.execute("SET TRANSACTION READ ONLY")
                    # Like PostgREST: the role's settings first, then the role.
                    for setting in conn.execute(ROLE_SETTINGS, {"role": self.role}).fetchall():
                        conn.execute("SELECT set_config(%s, %s, true)",
                                     (setting["key"], setting["value"]))
                    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self.role)))
                    conn.execute(
                        "SELECT set_config('request.jwt.claims', %s, true),"
                        " set_config('request.method', %s, true),"
                        " set_config('request.path', %s, true),"
                        " set_config('request.headers', %s, true)",
                        (json.dumps(self.claims or {"role": self.role}), method, path,
                         json.dumps(self.headers)),
                    )
                    conn.execute("SELECT api.pre_request()")
                    cur = conn.execute(query, params or {})
                    rows = cur.fetchall() if cur.description else []
                    self.last_headers = response_headers(conn)
                    return rows
            except psycopg.Error as exc:
                error = api_error(exc, self.role)
                self.last_headers = error.headers
                raise error from exc

    def get(self, view: str, where: sql.Composable | None = None,
            params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """GET /<view>?…  →  SELECT * FROM api.<view> [WHERE …]."""
        q = sql.SQL("SELECT * FROM {}").format(sql.Identifier("api", view))
        if where is not None:
            q = sql.SQL("{} WHERE {}").format(q, where)
        return self.request("GET", f"/{view}", q, params)

    def rpc(self, fn: str, **args: Any) -> Any:
        """POST /rpc/<fn> with named arguments → SELECT api.<fn>(name => value, …)."""
        call = sql.SQL("SELECT * FROM {}({})").format(
            sql.Identifier("api", fn),
            sql.SQL(", ").join(
                sql.SQL("{} => {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in args
            ),
        )
        rows = self.request("POST", f"/rpc/{fn}", call, args,
                            read_only=self._volatility(fn) in ("s", "i"))
        if len(rows) == 1 and len(rows[0]) == 1:
            return next(iter(rows[0].values()))
        return rows

    def _volatility(self, fn: str) -> str:
        """pg_proc.provolatile of api.<fn> (PostgREST's access mode of POST /rpc/<fn>)."""
        key = (self.dsn, fn)
        if key not in _VOLATILITY:
            with psycopg.connect(self.dsn) as conn:
                row = conn.execute("SELECT min(provolatile::text) FROM pg_proc"
                                   " WHERE pronamespace = 'api'::regnamespace AND proname = %s",
                                   (fn,)).fetchone()
            _VOLATILITY[key] = (row[0] if row else None) or "v"
        return _VOLATILITY[key]

    def write(self, method: str, path: str, query: sql.Composable,
              params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """POST/PATCH/DELETE on a view or table path, with a RETURNING query."""
        return self.request(method, path, query, params)
