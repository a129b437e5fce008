"""All configuration in one place: libpq's PG* variables and secinf's own SECINF_* variables.

`SECINF_DSN` points every command at an existing server (nothing is installed or started).
Without it, secinf runs its own cluster: data in `SECINF_PGDATA`, port `SECINF_PORT` (5433).
`SECINF_READ_DSN` sends read-only work (analysts, the review app's reads, analytics exports)
to a streaming replica (`secinf db replica up` starts one of the local cluster).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workers.errors import UserError

DEFAULT_PORT = 5433
DEFAULT_DBNAME = "secinf"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _is_root() -> bool:
    return os.geteuid() == 0


def _default_home() -> Path:
    """Where the local cluster lives: a directory the `postgres` user can reach when root."""
    if _is_root():
        return Path("/var/lib/secinf")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "secinf"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one command invocation."""

    dsn: str | None
    """SECINF_DSN when the user brings their own server."""
    home: Path
    port: int
    dbname: str
    pg_bin: Path
    storage_root: Path
    """The local backend's root: SECINF_DATASETS_DIR (SECINF_STORAGE is read too)."""
    authenticator_password: str | None = None
    """SECINF_AUTHENTICATOR_PASSWORD: the review app's `authenticator` login on a server of
    your own (the local cluster trusts its socket and needs none)."""
    storage_backend: str = "local"
    """SECINF_STORAGE_BACKEND: `local` (files under storage_root, the default) or `s3`."""
    s3_bucket: str | None = None
    """SECINF_S3_BUCKET: the bucket of the s3 backend (required for it)."""
    s3_prefix: str = ""
    """SECINF_S3_PREFIX: a key prefix inside the bucket (e.g. secinf/prod)."""
    s3_endpoint_url: str | None = None
    """SECINF_S3_ENDPOINT_URL: an S3-compatible store's endpoint (MinIO, Ceph, R2, …)."""
    s3_sse: str = "AES256"
    """SECINF_S3_SSE: server-side encryption of every put, AES256 or aws:kms."""
    s3_kms_key_id: str | None = None
    """SECINF_S3_KMS_KEY_ID: the KMS key of aws:kms (AWS's default S3 key when unset).
    Credentials are never settings: boto3's usual chain provides them."""
    stripe_webhook_secret: str | None = None
    """SECINF_STRIPE_WEBHOOK_SECRET: the signing secret (whsec_…) of the Stripe webhook
    endpoint POST /stripe/webhook (the file service answers 503 without it)."""
    stripe_secret_key: str | None = None
    """SECINF_STRIPE_SECRET_KEY: the API key (sk_… or rk_…) of checkout sessions and usage
    reports."""
    stripe_api_base: str | None = None
    """SECINF_STRIPE_API_BASE: Stripe's API address (default https://api.stripe.com; tests
    point it at a local recorder)."""
    stripe_success_url: str | None = None
    """SECINF_STRIPE_SUCCESS_URL: where Stripe Checkout sends the customer after paying
    (required for checkout sessions; may hold {CHECKOUT_SESSION_ID})."""
    stripe_cancel_url: str | None = None
    """SECINF_STRIPE_CANCEL_URL: where Checkout sends a customer who cancels (default: the
    success URL)."""
    stripe_meters: str = ""
    """SECINF_STRIPE_METERS: metric=event_name pairs, comma-separated, overriding the meter
    event name of a metric's usage reports (default secinf_<metric>)."""
    worker_metrics_port: int = 0
    """SECINF_WORKER_METRICS_PORT: the port `secinf worker` serves Prometheus metrics on at
    /metrics (0 or unset: no metrics server)."""
    worker_metrics_host: str = "127.0.0.1"
    """SECINF_WORKER_METRICS_HOST: the address of that server (0.0.0.0 in a container)."""
    log_format: str = "json"
    """SECINF_LOG_FORMAT: `secinf worker` and `secinf serve` log JSON lines (json, the
    default) or plain text (text); both redacted (workers/logs.py)."""
    backup_repo: Path | None = None
    """SECINF_BACKUP_REPO: the pgBackRest repository of the local cluster (backups and
    archived WAL; default `<home>/backups`). Put it on another disk than the data."""
    read_dsn: str | None = None
    """SECINF_READ_DSN: the read replica's admin conninfo; read-only work connects there
    (workers.db.connect.connect_read). Unset: reads go to the primary, read-only."""
    replica_home: Path | None = None
    """SECINF_REPLICA_HOME: where `secinf db replica up` puts the local replica (its pg15/,
    run/ and postgres.log, like a restore's directory); default `<home>/replica`."""
    replica_port: int = 0
    """SECINF_REPLICA_PORT: the local replica's port (0 or unset: the first free one after
    the primary's, chosen by `secinf db replica up` and remembered in its directory)."""
    shards: str | None = None
    """SECINF_SHARDS: the conninfo of the control database holding the shard map
    (workers/shards.py, docs/scale.md); unset: one cluster, as above."""

    @property
    def managed(self) -> bool:
        """True when secinf runs its own cluster (no SECINF_DSN)."""
        return self.dsn is None

    @property
    def pgdata(self) -> Path:
        return self.home / "pg15"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def run_as_postgres(self) -> bool:
        """initdb and pg_ctl refuse root: run them as the `postgres` OS user."""
        return _is_root()

    def conninfo(self, dbname: str | None = None, user: str | None = None) -> str:
        """A libpq connection string for the admin (superuser) connection."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        if self.dsn is not None:
            params = conninfo_to_dict(self.dsn)
            if dbname is not None:
                params["dbname"] = dbname
            if user is not None:
                params["user"] = user
            return make_conninfo(**params)  # type: ignore[arg-type]
        return make_conninfo(
            host=str(self.socket_dir),
            port=str(self.port),
            dbname=dbname or self.dbname,
            user=user or "postgres",
        )

    def read_conninfo(self, dbname: str | None = None, user: str | None = None) -> str:
        """The conninfo of read-only work: SECINF_READ_DSN (its database and user replaced
        when given), else the primary's `conninfo`."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        if self.read_dsn is None:
            return self.conninfo(dbname=dbname, user=user)
        params = conninfo_to_dict(self.read_dsn)
        params["dbname"] = dbname or params.get("dbname") or self.database
        if user is not None:
            params["user"] = user
        return make_conninfo(**params)  # type: ignore[arg-type]

    @property
    def replica_dir(self) -> Path:
        """The local replica's home (SECINF_REPLICA_HOME, else `<home>/replica`)."""
        return self.replica_home or self.home / "replica"

    @property
    def database(self) -> str:
        """The application database name (from SECINF_DSN or the default)."""
        if self.dsn is not None:
            from psycopg.conninfo import conninfo_to_dict

            return str(conninfo_to_dict(self.dsn).get("dbname") or DEFAULT_DBNAME)
        return self.dbname


def _port(env: Mapping[str, str], name: str) -> int:
    """A TCP port setting: unset or empty is 0 (off)."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) > 65535:
        raise UserError(f"{name}={raw!r} is not a port: set it to a number from 1 to 65535, "
                        "or 0 (or unset it) for none")
    return int(raw)


def load_settings() -> Settings:
    """Read the environment once; tests clear SECINF_* before they run."""
    env = os.environ
    home = Path(env.get("SECINF_HOME") or _default_home())
    return Settings(
        dsn=env.get("SECINF_DSN") or None,
        home=home,
        port=int(env.get("SECINF_PORT") or DEFAULT_PORT),
        dbname=env.get("SECINF_DBNAME") or DEFAULT_DBNAME,
        pg_bin=Path(env.get("SECINF_PG_BIN") or PG_BIN),
        storage_root=Path(env.get("SECINF_DATASETS_DIR") or env.get("SECINF_STORAGE")
                          or home / "datasets"),
        authenticator_password=env.get("SECINF_AUTHENTICATOR_PASSWORD") or None,
        storage_backend=(env.get("SECINF_STORAGE_BACKEND") or "local").strip().lower(),
        s3_bucket=env.get("SECINF_S3_BUCKET") or None,
        s3_prefix=env.get("SECINF_S3_PREFIX") or "",
        s3_endpoint_url=env.get("SECINF_S3_ENDPOINT_URL") or None,
        s3_sse=env.get("SECINF_S3_SSE") or "AES256",
        s3_kms_key_id=env.get("SECINF_S3_KMS_KEY_ID") or None,
        stripe_webhook_secret=env.get("SECINF_STRIPE_WEBHOOK_SECRET") or None,
        stripe_secret_key=env.get("SECINF_STRIPE_SECRET_KEY") or None,
        stripe_api_base=env.get("SECINF_STRIPE_API_BASE") or None,
        stripe_success_url=env.get("SECINF_STRIPE_SUCCESS_URL") or None,
        stripe_cancel_url=env.get("SECINF_STRIPE_CANCEL_URL") or None,
        stripe_meters=env.get("SECINF_STRIPE_METERS") or "",
        worker_metrics_port=_port(env, "SECINF_WORKER_METRICS_PORT"),
        worker_metrics_host=env.get("SECINF_WORKER_METRICS_HOST") or "127.0.0.1",
        log_format=env.get("SECINF_LOG_FORMAT") or "json",
        backup_repo=Path(env["SECINF_BACKUP_REPO"]) if env.get("SECINF_BACKUP_REPO") else None,
        read_dsn=env.get("SECINF_READ_DSN") or None,
        replica_home=Path(env["SECINF_REPLICA_HOME"]) if env.get("SECINF_REPLICA_HOME") else None,
        replica_port=_port(env, "SECINF_REPLICA_PORT"),
        shards=env.get("SECINF_SHARDS") or None,
    )


REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = REPO_ROOT / "migrations"
SQL_DIR = REPO_ROOT / "sql"
PLPYTHON_DIR = REPO_ROOT / "plpython"
ONTOLOGIES_DIR = REPO_ROOT / "ontologies"
