"""The production deployment files in docker/: structure in pure Python, and the compose
client's own validation where one is installed (no Docker engine is needed for either)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.db.cluster import SERVER_CONF

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
SERVICES = {"postgres", "postgrest", "migrate", "worker", "streamlit", "files", "prometheus",
            "postgres-exporter", "postgres-replica", "postgrest-replica", "postgres-b",
            "migrate-b", "postgrest-b", "files-b", "shards-register", "route"}
SHARDS_PROFILE = {"postgres-b", "migrate-b", "postgrest-b", "files-b", "shards-register",
                  "route"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?+-][^}]*)?\}")


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _env_example() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example line without '=': {line!r}"
            out[key.strip()] = value.strip()
    return out


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _strings(node: Any) -> list[str]:
    """Every string (keys and values) in a parsed YAML document; comments are gone."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def _conf(text: str) -> dict[str, str]:
    """Parse postgresql.conf / postgrest.conf style `key = value` lines."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip().strip("'\"")
    return out


def test_compose_has_every_service_with_the_right_wiring() -> None:
    services = _compose()["services"]
    assert set(services) == SERVICES
    assert services["migrate"]["command"] == ["db", "migrate"]
    assert services["worker"]["command"] == ["worker"]
    assert services["streamlit"]["entrypoint"][:3] == [
        "streamlit", "run", "streamlit_app/streamlit_app.py"]
    for name in ("migrate", "worker", "streamlit", "files"):
        assert services[name]["build"]["dockerfile"] == "docker/workers/Dockerfile", name
        assert "SECINF_DSN" in _env(services[name]), name
    assert "user=postgres" in _env(services["migrate"])["SECINF_DSN"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("postgrest", "worker", "streamlit", "files"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"), name
    for name in SERVICES - {"migrate", "migrate-b", "shards-register"}:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    volumes = set(_compose()["volumes"])
    assert {"pgdata", "datasets"} <= volumes
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_postgrest_is_configured_as_the_api_gateway() -> None:
    service = _compose()["services"]["postgrest"]
    env = _env(service)
    # Names PostgREST (PGRST_*) and libpq (PGPASSWORD) actually read.
    assert set(env) == {"PGPASSWORD", "PGRST_JWT_SECRET", "PGRST_OPENAPI_SERVER_PROXY_URI"}
    assert env["PGRST_JWT_SECRET"].startswith("${PGRST_JWT_SECRET")
    assert "AUTHENTICATOR_PASSWORD" in env["PGPASSWORD"]
    mount = next(v for v in service["volumes"] if v.startswith("./postgrest/"))
    host_path, container_path = mount.split(":")[:2]
    assert (DOCKER / host_path).is_file()
    assert service["command"][-1] == container_path
    conf = _conf((DOCKER / host_path).read_text())
    assert conf["db-schemas"] == "api"
    assert conf["db-anon-role"] == "anon"
    assert conf["db-pre-request"] == "api.pre_request"
    assert conf["db-uri"].startswith("postgres://authenticator@postgres:5432/")
    assert "jwt-secret" not in conf, "the secret comes from PGRST_JWT_SECRET, not the file"
    assert "openapi-server-proxy-uri" in conf
    assert "admin-server-port" in conf  # `postgrest --ready` needs the admin server


def test_the_file_service_serves_the_workers_storage_as_pipeline() -> None:
    services = _compose()["services"]
    files = services["files"]
    assert files["command"][0] == "serve"
    port = files["command"][files["command"].index("--port") + 1]
    assert files["command"][files["command"].index("--host") + 1] == "0.0.0.0"
    assert "user=pipeline" in _env(files)["SECINF_DSN"].split()
    assert "PIPELINE_PASSWORD" in _env(files)["PGPASSWORD"]
    assert files["volumes"] == services["worker"]["volumes"]  # the same local storage
    assert any(p.endswith(f":{port}") for p in files["ports"])
    assert f"127.0.0.1:{port}/healthz" in " ".join(files["healthcheck"]["test"])


def test_the_replica_profile_streams_from_postgres_and_serves_reads() -> None:
    services = _compose()["services"]
    replica, api = services["postgres-replica"], services["postgrest-replica"]
    assert replica["profiles"] == api["profiles"] == ["replica"]
    assert all("profiles" not in services[name] for name in SERVICES - SHARDS_PROFILE
               if name not in ("postgres-replica", "postgrest-replica"))
    assert replica["image"] == services["postgres"]["image"]
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pgdata-replica:/var/lib/postgresql/data" in replica["volumes"]
    assert "pgdata-replica" in _compose()["volumes"]
    # The entrypoint copies the primary with the slot the primary's initdb hook creates.
    mount = next(v for v in replica["volumes"] if v.startswith("./postgres/"))
    host_path, container_path = mount.split(":")[:2]
    assert replica["entrypoint"] == [container_path]
    script = (DOCKER / host_path).read_text()
    assert "pg_basebackup" in script and "-R -X stream -S secinf_replica" in script
    assert 'exec docker-entrypoint.sh "$@"' in script
    hook = (DOCKER / "postgres" / "initdb" / "20-secinf-replication.sh").read_text()
    assert "pg_create_physical_replication_slot('secinf_replica')" in hook
    assert "host replication replicator all scram-sha-256" in hook
    assert "cluster_name=secinf_replica" in replica["command"]
    assert "hot_standby=on" in replica["command"]
    # The read-only PostgREST: postgrest.conf but for the database host, same secret.
    assert api["image"] == services["postgrest"]["image"]
    assert _env(api)["PGRST_JWT_SECRET"] == _env(services["postgrest"])["PGRST_JWT_SECRET"]
    assert api["depends_on"]["postgres-replica"]["condition"] == "service_healthy"
    conf_path = next(v for v in api["volumes"] if v.startswith("./postgrest/")).split(":")[0]
    conf = _conf((DOCKER / conf_path).read_text())
    primary = _conf((DOCKER / "postgrest" / "postgrest.conf").read_text())
    assert conf["db-uri"] == "postgres://authenticator@postgres-replica:5432/secinf"
    assert {k: v for k, v in conf.items() if k not in ("db-uri", "openapi-server-proxy-uri")} \
        == {k: v for k, v in primary.items() if k not in ("db-uri", "openapi-server-proxy-uri")}
    # The app may read through it (empty by default: everything through the primary).
    assert _env(services["streamlit"])["SECINF_READ_DSN"] == "${SECINF_READ_DSN:-}"


def test_the_shards_profile_runs_a_second_shard_and_the_routing_proxy() -> None:
    services = _compose()["services"]
    assert all(services[name]["profiles"] == ["shards"] for name in SHARDS_PROFILE)
    assert "pgdata-b:/var/lib/postgresql/data" in services["postgres-b"]["volumes"]
    assert "pgdata-b" in _compose()["volumes"]
    assert "host=postgres-b" in _env(services["migrate-b"])["SECINF_DSN"]
    assert "host=postgres-b" in _env(services["files-b"])["SECINF_DSN"]
    api_b = _env(services["postgrest-b"])
    assert api_b["PGRST_DB_URI"] == "postgres://authenticator@postgres-b:5432/secinf"
    assert api_b["PGRST_JWT_SECRET"].startswith("${PGRST_JWT_SECRET_B")  # its own secret
    register = " ".join(services["shards-register"]["command"])
    for url in ("http://postgrest:3000", "http://files:8600", "http://postgrest-b:3000",
                "http://files-b:8600"):
        assert url in register
    route = services["route"]
    assert route["command"][0] == "route"
    assert _env(route)["SECINF_SHARDS"] == _env(services["shards-register"])["SECINF_SHARDS"]
    assert "dbname=secinf " not in _env(route)["SECINF_SHARDS"] + " "  # not a tenant database
    assert route["depends_on"]["shards-register"]["condition"] == (
        "service_completed_successfully")
    assert {"postgrest", "files", "postgrest-b", "files-b"} <= set(route["depends_on"])


def test_every_compose_variable_is_in_env_example() -> None:
    used = {var for text in _strings(_compose()) for var in _VAR.findall(text)}
    listed = _env_example()
    assert used, "compose.yaml uses no variables?"
    assert used - set(listed) == set(), "variables missing from docker/.env.example"
    assert set(listed) - used == set(), "docker/.env.example lists variables compose ignores"
    assert len(listed["PGRST_JWT_SECRET"]) >= 32  # PostgREST refuses shorter secrets


def test_postgres_settings_match_the_local_cluster() -> None:
    snippet = _conf((DOCKER / "postgres" / "secinf.conf").read_text())
    local = _conf(SERVER_CONF)
    for key in ("shared_preload_libraries", "cron.use_background_workers",
                "max_worker_processes", "timescaledb.max_background_workers", "cron.log_run"):
        assert snippet[key] == local[key], key
    env = _env(_compose()["services"]["postgres"])
    assert snippet["cron.database_name"] == env["POSTGRES_DB"] == "secinf"
    for name in ("migrate", "worker", "streamlit"):
        dsn = _env(_compose()["services"][name])["SECINF_DSN"]
        assert f"dbname={env['POSTGRES_DB']}" in dsn.split(), name
    dockerfile = (DOCKER / "postgres" / "Dockerfile").read_text()
    assert "FROM postgres:15-bookworm" in dockerfile
    for pkg in ("postgresql-${PG_MAJOR}-cron", "postgresql-plpython3-${PG_MAJOR}",
                "python3-numpy", "python3-jwt", "-DAPACHE_ONLY=ON", "trixie"):
        assert pkg in dockerfile, pkg
    assert "/etc/postgresql/secinf.conf" in dockerfile


def _copy_sources(dockerfile: Path) -> list[str]:
    sources: list[str] = []
    for line in dockerfile.read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].upper() not in ("COPY", "ADD"):
            continue
        args = [p for p in parts[1:] if not p.startswith("--")]
        if any(p.startswith("--from") for p in parts[1:]):
            continue  # from another build stage
        sources.extend(args[:-1])
    return sources


@pytest.mark.parametrize("service", ["postgres", "worker"])
def test_dockerfiles_copy_only_what_exists(service: str) -> None:
    build = _compose()["services"][service]["build"]
    context = (DOCKER / build["context"]).resolve()
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    assert dockerfile.is_file(), dockerfile
    sources = _copy_sources(dockerfile)
    assert sources, f"{dockerfile} copies nothing?"
    for src in sources:
        assert (context / src).exists(), f"{dockerfile.relative_to(REPO)}: COPY {src} is missing"


def test_workers_image_installs_the_package_with_cpu_torch() -> None:
    text = (DOCKER / "workers" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim-bookworm" in text
    assert re.search(r"pip install .*download\.pytorch\.org/whl/cpu torch==2\.13\.0", text)
    assert "pip install -e ." in text  # settings find migrations/ beside the package
    assert 'ENTRYPOINT ["secinf"]' in text
    ignore = [line for line in (DOCKER / "workers" / "Dockerfile.dockerignore").read_text()
              .splitlines() if line.strip() and not line.startswith("#")]
    assert ignore[0] == "**"  # a whitelist: .venv and .git never reach the build


def test_initdb_script_creates_the_login_roles() -> None:
    script = DOCKER / "postgres" / "initdb" / "10-secinf-logins.sh"
    text = script.read_text()
    assert script.stat().st_mode & 0o111, "initdb script must be executable"
    assert "CREATE ROLE authenticator LOGIN NOINHERIT" in text
    assert "CREATE ROLE pipeline LOGIN" in text
    assert "CREATE ROLE secinf_monitor LOGIN NOINHERIT" in text
    env = _env(_compose()["services"]["postgres"])
    assert {"AUTHENTICATOR_PASSWORD", "PIPELINE_PASSWORD", "MONITOR_PASSWORD"} <= set(env)


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host file of a service's bind mounts of repository files."""
    out: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith("./"):
            out[container] = DOCKER / host
    return out


def test_prometheus_scrapes_the_worker_the_file_service_and_the_exporter() -> None:
    services = _compose()["services"]
    prom, exporter = services["prometheus"], services["postgres-exporter"]
    mounts = _mounts(prom)
    config_path = prom["command"][0].removeprefix("--config.file=")
    assert config_path in mounts and all(p.is_file() for p in mounts.values())
    config = yaml.safe_load(mounts[config_path].read_text())
    # alerts.yml is named relative to the config, and mounted beside it.
    for rule_file in config["rule_files"]:
        beside = str(Path(config_path).parent / rule_file)
        assert beside in mounts and mounts[beside].name == "alerts.yml", rule_file
    targets = {c["job_name"]: c["static_configs"][0]["targets"] for c in config["scrape_configs"]}
    worker_env = _env(services["worker"])
    assert worker_env["SECINF_WORKER_METRICS_HOST"] == "0.0.0.0"
    files_port = services["files"]["command"][services["files"]["command"].index("--port") + 1]
    listen = next(a for a in exporter["command"] if a.startswith("--web.listen-address="))
    assert targets == {
        "secinf-worker": [f"worker:{worker_env['SECINF_WORKER_METRICS_PORT']}"],
        "secinf-files": [f"files:{files_port}"],
        "secinf-postgres": [f"postgres-exporter:{listen.rsplit(':', 1)[1]}"],
    }
    assert all(f"127.0.0.1:{p.split(':')[-1]}" in " ".join(s["healthcheck"]["test"])
               for s, p in ((prom, "9090"), (exporter, listen)))
    assert all(p.startswith("127.0.0.1:") for p in prom["ports"])  # the host only


def test_the_exporter_logs_in_as_the_monitoring_role_with_the_queries_file() -> None:
    exporter = _compose()["services"]["postgres-exporter"]
    env = _env(exporter)
    dsn = dict(part.split("=", 1) for part in env["DATA_SOURCE_NAME"].split())
    assert dsn["user"] == "secinf_monitor" and dsn["host"] == "postgres"
    assert "password" not in dsn and "MONITOR_PASSWORD" in env["PGPASSWORD"]
    assert dsn["dbname"] == _env(_compose()["services"]["postgres"])["POSTGRES_DB"]
    queries = next(a for a in exporter["command"] if a.startswith("--extend.query-path="))
    mounted = _mounts(exporter)[queries.split("=", 1)[1]]
    assert mounted == DOCKER / "monitoring" / "postgres_exporter_queries.yaml"
    assert "--no-collector.database" in exporter["command"]
    assert exporter["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # The image versions are the Debian packages' that the scrape test runs.
    assert exporter["image"].endswith("${POSTGRES_EXPORTER_VERSION:-v0.11.1}")
    assert _compose()["services"]["prometheus"]["image"].endswith("${PROMETHEUS_VERSION:-v2.42.0}")


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is absent: it comes with Debian's prometheus package "
                    "(scripts/install-system.sh installs it)")
    done = subprocess.run([promtool, "check", "config", "prometheus.yml"],
                          cwd=DOCKER / "monitoring", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_client_accepts_the_file() -> None:
    client = _compose_client()
    if client is None:
        pytest.skip("no compose client: neither the `docker compose` plugin nor "
                    "`docker-compose` is installed (apt-get install docker-compose)")
    proc = subprocess.run(
        [*client, "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "not set" not in proc.stderr, proc.stderr
