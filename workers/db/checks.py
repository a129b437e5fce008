"""Start-up checks: the server has every extension and preload secinf needs; what of the
analyst limits does not hold on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from workers.db.queries import query
from workers.errors import MissingExtension

REQUIRED_EXTENSIONS: dict[str, str] = {
    "timescaledb": "TimescaleDB 2.x for PostgreSQL 15: `make setup` (as root) builds it from "
    "Debian's timescaledb source package; elsewhere install timescaledb-2-postgresql-15",
    "vector": "pgvector: `make setup` builds it from Debian's pgvector source package; "
    "elsewhere install postgresql-15-pgvector",
    "pg_cron": "pg_cron: `apt-get install postgresql-15-cron`",
    "plpython3u": "PL/Python: `apt-get install postgresql-plpython3-15` (and python3-numpy, "
    "python3-jwt for the functions secinf defines)",
    "pgcrypto": "pgcrypto: part of postgresql-contrib (`apt-get install postgresql-contrib`)",
}
PRELOAD = ("timescaledb", "pg_cron")


@dataclass(frozen=True)
class CheckResult:
    missing_extensions: dict[str, str]
    missing_preload: list[str]
    cron_database: str | None

    @property
    def ok(self) -> bool:
        return not self.missing_extensions and not self.missing_preload


def check_server(conn: psycopg.Connection[dict[str, object]]) -> CheckResult:
    """Compare the server's available extensions and preloads with what secinf needs."""
    rows = conn.execute("SELECT name FROM pg_available_extensions").fetchall()
    available = {str(r["name"]) for r in rows}
    preload_row = conn.execute("SELECT current_setting('shared_preload_libraries') AS v").fetchone()
    preload = {p.strip() for p in str(preload_row["v"] if preload_row else "").split(",")}
    cron_row = conn.execute(
        "SELECT current_setting('cron.database_name', true) AS v"
    ).fetchone()
    return CheckResult(
        missing_extensions={
            name: how for name, how in REQUIRED_EXTENSIONS.items() if name not in available
        },
        missing_preload=[p for p in PRELOAD if p not in preload],
        cron_database=str(cron_row["v"]) if cron_row and cron_row["v"] else None,
    )


def require_server(conn: psycopg.Connection[dict[str, object]]) -> CheckResult:
    """Raise MissingExtension naming each missing piece and how to get it."""
    result = check_server(conn)
    if result.ok:
        return result
    lines = [f"  - {name}: {how}" for name, how in result.missing_extensions.items()]
    if result.missing_preload:
        lines.append(
            "  - shared_preload_libraries must include "
            f"{', '.join(result.missing_preload)} (postgresql.conf; then restart the server)"
        )
    raise MissingExtension("The server lacks what secinf needs:\n" + "\n".join(lines))


def analyst_limits(conn: psycopg.Connection[dict[str, object]]) -> dict[str, Any] | None:
    """auth.analyst_limits_report() of the connected database (sql/961_analyst_limits.sql),
    or None before that file was applied."""
    row = conn.execute(query("db", "has_analyst_limits")).fetchone()
    if not row or not row["ok"]:
        return None
    report = conn.execute(query("db", "analyst_limits_report")).fetchone()
    return dict(report["report"]) if report and isinstance(report["report"], dict) else None


def analyst_limit_problems(report: dict[str, Any] | None) -> list[str]:
    """What of the analyst limits does not hold here, one line each with its fix."""
    if report is None:
        return ["analyst limits not installed: run `secinf db migrate`"]
    lines = []
    if report.get("public_connect") or report.get("public_temp"):
        lines.append("PUBLIC may CONNECT to or create TEMP tables in this database: "
                     "SELECT auth.lock_down_database(); as a superuser")
    if report.get("watchdog_scheduled") is False:
        lines.append("the analyst watchdog is not scheduled (cron job "
                     "secinf-analyst-watchdog): run `secinf db migrate`")
    if not report.get("memory_readable"):
        lines.append("the server cannot read its backends' /proc/<pid>/status: the "
                     "watchdog cannot cap analysts' memory (only temp_file_limit holds)")
    if not report.get("hba_readable"):
        lines.append("pg_hba.conf is unreadable here: cannot tell which other databases "
                     "analysts can reach")
    if report.get("open_databases"):
        names = ", ".join(str(d) for d in report["open_databases"])
        lines.append(f"analysts can connect to other databases: {names} (CONNECT there is "
                     "PUBLIC's: a secinf database is closed by `secinf db migrate` on it; any "
                     "other by REVOKE CONNECT ON DATABASE <db> FROM PUBLIC or pg_hba.conf "
                     "lines `local <db> +analyst reject` and `host <db> +analyst all reject`)")
    return lines
