"""Tenant shards: which Postgres cluster holds which project.

`SECINF_SHARDS` names a control database (a libpq conninfo) holding the shard map:
`control.shards(name, conninfo, read_conninfo, api_url, files_url)` and
`control.placements(org, project → shard)` (workers/queries/shards.sql). Without it there
is one cluster, the one of SECINF_DSN or the local cluster, and everything here answers
with it: a single shard named `default`.

Every project lives on exactly one shard; its rows, its jobs and its files' metadata are
written there and nowhere else. The CLI routes a command's connections by its `--project`
(`routed` wraps every command in workers/cli/main.py; workers/db/connect.py asks `route`),
the worker runs one claim loop per shard (workers/queue/sharded.py), and project creation
places the project first (`place`), then creates it on that shard. A shard's read-only work
(`connect_read`) goes to its replica when it has one (`read_conninfo`, `read_route`);
`secinf route` (workers/route) sends HTTP requests to a shard's `api_url` and `files_url`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from workers import tenancy
from workers.base_url import base_url as checked_base_url
from workers.db.queries import query
from workers.errors import DatabaseUnavailable, NotFound, UserError
from workers.settings import Settings, load_settings

DEFAULT_SHARD = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
Conn = psycopg.Connection[dict[str, Any]]
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Shard:
    """One cluster's application database."""

    name: str
    conninfo: str
    read_conninfo: str | None = None
    """The shard's read replica (None: its read-only work goes to `conninfo`)."""
    api_url: str | None = None
    """Its PostgREST's base URL (`secinf route` sends its projects' API requests there)."""
    files_url: str | None = None
    """Its file service's base URL (`secinf route` sends its projects' /files/… there)."""
    read_api_url: str | None = None
    """A read-only PostgREST on its replica (`secinf route` sends API GETs there)."""

    @property
    def read_target(self) -> str:
        """Where read-only work of the shard's projects goes: its replica, else itself."""
        return self.read_conninfo or self.conninfo


def _shard(row: dict[str, Any]) -> Shard:
    return Shard(row["name"], row["conninfo"], row.get("read_conninfo"), row.get("api_url"),
                 row.get("files_url"), row.get("read_api_url"))


@dataclass(frozen=True)
class Placement:
    org: str
    project: str
    shard: Shard
    project_id: str | None


# ---------------------------------------------------------------------- the control database
@contextmanager
def control(settings: Settings | None = None) -> Iterator[Conn]:
    """A connection to the control database (its schema ensured); UserError without one."""
    settings = settings or load_settings()
    if settings.shards is None:
        raise UserError("no shard map: set SECINF_SHARDS to the conninfo of a control "
                        "database, e.g. 'host=/var/lib/secinf/run port=5433 "
                        "dbname=secinf_control'")
    try:
        conn = psycopg.connect(settings.shards, row_factory=dict_row)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot reach the shard map's control database (SECINF_SHARDS): "
            f"{str(exc).strip().splitlines()[0]}") from exc
    try:
        outdated = conn.execute(query("shards", "control_outdated")).fetchone()
        if outdated is None or outdated["outdated"]:  # fresh or older: make or upgrade it
            conn.execute(query("shards", "ensure_control"))
        conn.commit()
        yield conn
    finally:
        conn.close()


def sharded(settings: Settings | None = None) -> bool:
    """True when a shard map is configured (SECINF_SHARDS)."""
    return (settings or load_settings()).shards is not None


def shards(settings: Settings | None = None) -> list[Shard]:
    """Every shard, in the order added; without a map the one cluster, named `default`."""
    settings = settings or load_settings()
    if settings.shards is None:
        return [Shard(DEFAULT_SHARD, settings.conninfo())]
    with control(settings) as conn:
        rows = conn.execute(query("shards", "list_shards")).fetchall()
    return [_shard(r) for r in rows]


def list_shards(settings: Settings | None = None) -> list[dict[str, Any]]:
    """The shards with their project counts (connection strings without passwords)."""
    with control(settings) as conn:
        rows = conn.execute(query("shards", "list_shards")).fetchall()
    return [_printable(r) for r in rows]


def _printable(row: dict[str, Any]) -> dict[str, Any]:
    return {**dict(row), "conninfo": redact(row["conninfo"]),
            "read_conninfo": redact(row["read_conninfo"]) if row.get("read_conninfo") else None}


def redact(conninfo: str) -> str:
    """A conninfo fit to print: the password (if any) replaced."""
    params = conninfo_to_dict(conninfo)
    return " ".join(f"{k}={'***' if k == 'password' else v}" for k, v in params.items()
                    if v is not None)


def add_shard(name: str, conninfo: str, settings: Settings | None = None, *,
              read_conninfo: str | None = None, api_url: str | None = None,
              files_url: str | None = None,
              read_api_url: str | None = None) -> dict[str, Any]:
    """Add a shard (or change its conninfo); the server must be reachable and migrated. A
    replica or URL given is set too (its server checked); one not given keeps its value."""
    if not _NAME.match(name):
        raise UserError(f"shard name {name!r}: use 1-63 lower-case letters, digits, _ or -")
    _probe(name, conninfo, standby=False)
    if read_conninfo is not None:
        _probe(name, read_conninfo, standby=True)
    params = {"name": name, "conninfo": conninfo, "read_conninfo": read_conninfo,
              "api_url": base_url(api_url, "--api-url") if api_url is not None else None,
              "files_url": base_url(files_url, "--files-url") if files_url is not None else None,
              "read_api_url": (base_url(read_api_url, "--read-api-url")
                               if read_api_url is not None else None)}
    with control(settings) as conn:
        row = conn.execute(query("shards", "add_shard"), params).fetchone()
        conn.commit()
    assert row is not None
    return _printable(row)


def set_replica(name: str, read_conninfo: str | None,
                settings: Settings | None = None,
                read_api_url: str | None = None) -> dict[str, Any]:
    """Give shard `name` its read replica (a hot standby of it) and, if given, the
    replica's read-only PostgREST; or neither (`read_conninfo` None)."""
    if read_conninfo is not None:
        _probe(name, read_conninfo, standby=True)
    elif read_api_url is not None:
        raise UserError(f"--api-url {read_api_url} names the replica's PostgREST, and shard "
                        f"{name} is given no replica: pass the replica's CONNINFO too "
                        "(`secinf shards replica NAME CONNINFO --api-url URL`), or set the "
                        "URL alone with `secinf shards add NAME CONNINFO --read-api-url URL`")
    url = base_url(read_api_url, "--api-url") if read_api_url is not None else None
    with control(settings) as conn:
        row = conn.execute(query("shards", "set_replica"),
                           {"name": name, "read_conninfo": read_conninfo,
                            "read_api_url": url}).fetchone()
        if row is None:
            _shard_named(conn, name)  # raises NotFound naming the shards there are
        conn.commit()
    assert row is not None
    return _printable(row)


def base_url(url: str, option: str) -> str:
    """An upstream's base URL without its trailing '/'; UserError naming the option."""
    return checked_base_url(url, option, "http://postgrest-eu-1:3000")


def _probe(name: str, conninfo: str, *, standby: bool) -> None:
    """The server must be a migrated secinf database; a replica must be in recovery."""
    what = "read replica" if standby else "conninfo"
    try:
        with psycopg.connect(conninfo, connect_timeout=10) as probe:
            row = probe.execute(
                "SELECT to_regnamespace('core') IS NOT NULL AND "
                "to_regclass('jobs.jobs') IS NOT NULL, pg_is_in_recovery()").fetchone()
    except psycopg.Error as exc:
        raise UserError(f"shard {name}: cannot connect to its {what} {redact(conninfo)!r}: "
                        f"{str(exc).strip().splitlines()[0]}") from exc
    assert row is not None
    migrated, in_recovery = row
    if not migrated:
        raise UserError(f"shard {name}: {redact(conninfo)!r} is not a migrated secinf "
                        "database: run `secinf db up` against it first (SECINF_DSN=…)"
                        + (" — or, for a replica, against its primary" if standby else ""))
    if standby and not in_recovery:
        raise UserError(f"shard {name}: the read replica {redact(conninfo)!r} is not a hot "
                        "standby (pg_is_in_recovery() is false): name a streaming replica "
                        "of the shard (`secinf db replica up` on its server prints one)")


def _shard_named(conn: Conn, name: str) -> Shard:
    for r in conn.execute(query("shards", "list_shards")).fetchall():
        if r["name"] == name:
            return _shard(r)
    names = ", ".join(r["name"] for r in conn.execute(query("shards", "list_shards"))) or "none"
    raise NotFound(f"no shard {name!r} (shards: {names}); add it with `secinf shards add`")


def place(org: str, project: str, shard: str | None = None,
          settings: Settings | None = None) -> Placement:
    """Put org/project on `shard` (default: the one with the fewest projects). A project
    that exists already keeps its shard: moving one is a shard move (docs/scale.md)."""
    org, project = tenancy.slugify(org), tenancy.slugify(project)
    with control(settings) as conn:
        placed = conn.execute(query("shards", "placement"),
                              {"org": org, "project": project}).fetchone()
        if placed is not None and placed["project_id"] is not None:  # it exists: it stays
            if shard is not None and placed["shard"] != shard:
                raise UserError(f"{org}/{project} exists on shard {placed['shard']}: it "
                                f"cannot be placed on {shard} (moving a project is a shard "
                                "move, see docs/scale.md)")
            return Placement(org, project, _shard_named(conn, placed["shard"]),
                             str(placed["project_id"]))
        if shard is None:
            if placed is not None:
                shard = str(placed["shard"])
            else:
                row = conn.execute(query("shards", "least_loaded")).fetchone()
                if row is None:
                    raise UserError("the shard map has no shards: add one with "
                                    "`secinf shards add`")
                shard = str(row["name"])
        target = _shard_named(conn, shard)
        placed = conn.execute(query("shards", "place"),
                              {"org": org, "project": project, "shard": shard}).fetchone()
        if placed is None:  # created meanwhile by someone else: its placement stands
            conn.rollback()
            return place(org, project, shard, settings)
        conn.commit()
    pid = placed["project_id"]
    return Placement(org, project, target, str(pid) if pid else None)


def placements(settings: Settings | None = None) -> list[dict[str, Any]]:
    with control(settings) as conn:
        return [dict(r) for r in conn.execute(query("shards", "list_placements")).fetchall()]


# ---------------------------------------------------------------------- routing
def shard_of(project_ref: str, settings: Settings | None = None) -> Shard:
    """The shard of a project (its uuid, org/slug or a unique slug)."""
    settings = settings or load_settings()
    if settings.shards is None:
        return Shard(DEFAULT_SHARD, settings.conninfo())
    with control(settings) as conn:
        rows = conn.execute(query("shards", "find_placements"),
                            {"ref": project_ref.strip()}).fetchall()
    if not rows:
        raise NotFound(f"project {project_ref!r} is on no shard: create it with "
                       "`secinf project create` (which places it), or place it with "
                       "`secinf shards place ORG/PROJECT SHARD`")
    if len(rows) > 1:
        names = ", ".join(f"{r['org']}/{r['project']}" for r in rows)
        raise UserError(f"project {project_ref!r} is ambiguous ({names}): name it as org/project")
    return _shard({**rows[0], "name": rows[0]["shard"]})


@contextmanager
def connect_for_project(project_ref: str, settings: Settings | None = None,
                        *, autocommit: bool = False) -> Iterator[Conn]:
    """An admin connection to the project's shard."""
    from workers.db.connect import connect

    settings = settings or load_settings()
    with connect(settings, autocommit=autocommit,
                 conninfo=shard_of(project_ref, settings).conninfo) as conn:
        yield conn


_command_project: str | None = None
"""The `--project` of the running `secinf` command (set by `routed`), for `route`."""


def routed(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a CLI command so that its connections go to its `--project`'s shard: the
    project is noted for the command's run (a process-wide note, so the command's own
    threads see it too) and read by `route` when the command connects."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        global _command_project
        value = kwargs.get("project")
        before = _command_project
        _command_project = value.strip() if isinstance(value, str) and value.strip() else None
        try:
            return command(*args, **kwargs)
        finally:
            _command_project = before

    return run


def command_project() -> str | None:
    """The `--project` of the running `secinf` command, if it has one."""
    return _command_project


def route(settings: Settings) -> str | None:
    """The conninfo of the running command's project's shard under a shard map; None when
    there is no map or the command names no project (it goes where it went before)."""
    shard = read_route(settings)
    return shard.conninfo if shard else None


def read_route(settings: Settings) -> Shard | None:
    """The running command's project's shard under a shard map (for read-only work, its
    `read_target` is the replica, else the primary); None as for `route`."""
    if settings.shards is None:
        return None
    project = command_project()
    return shard_of(project, settings) if project else None


# ---------------------------------------------------------------------- projects
def create_project(org: str, name: str, slug: str | None = None, plan: str = "free",
                   shard: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Place a project (on `shard`, else the least loaded) and create it there. Idempotent:
    an existing project is returned from its shard."""
    from workers.db.connect import connect

    settings = settings or load_settings()
    if settings.shards is None:
        if shard not in (None, DEFAULT_SHARD):
            raise UserError(f"--shard {shard}: there is no shard map (set SECINF_SHARDS)")
        with connect(settings) as conn:
            return {**tenancy.create_project(conn, org, name, slug, plan), "shard": DEFAULT_SHARD}
    slug = slug or tenancy.slugify(name)
    placed = place(org, slug, shard, settings)
    with connect(settings, conninfo=placed.shard.conninfo) as conn:
        row = tenancy.create_project(conn, org, name, slug, plan)
    with control(settings) as conn:
        conn.execute(query("shards", "set_project_id"),
                     {"org": placed.org, "project": placed.project,
                      "project_id": row["project_id"]})
        conn.commit()
    return {**row, "shard": placed.shard.name}


def list_projects(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every project of every shard, with its shard."""
    from workers.db.connect import connect

    settings = settings or load_settings()
    rows: list[dict[str, Any]] = []
    for shard in shards(settings):
        with connect(settings, conninfo=shard.conninfo) as conn:
            rows += [{**r, "shard": shard.name} for r in tenancy.list_projects(conn)]
    return rows


def revoke_key_anywhere(prefix: str, settings: Settings | None = None) -> str:
    """Revoke an API key on the shard that holds it (keys name no project); its shard."""
    from workers.db.connect import connect

    settings = settings or load_settings()
    for shard in shards(settings):
        with connect(settings, conninfo=shard.conninfo) as conn:
            try:
                tenancy.revoke_key(conn, prefix)
            except NotFound:
                continue
        return shard.name
    raise NotFound(f"no API key with prefix {prefix!r} on any shard: see "
                   "`secinf keys list --project P`")
