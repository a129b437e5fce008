#!/usr/bin/env bash
# The read replica (docker/compose.yaml, profile `replica`): on an empty volume, copy the
# primary with pg_basebackup -R (streaming from the slot secinf_replica, as `replicator`),
# then run the image's own entrypoint, which finds a data directory and starts it as a hot
# standby. Mounted read-only at /usr/local/bin/secinf-replica-entrypoint.sh.
set -euo pipefail
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD in docker/.env (and create the replicator login on the primary: docs/operations.md, \"Read replica\")}"
: "${PGDATA:=/var/lib/postgresql/data}"
mkdir -p "$PGDATA"
chown postgres:postgres "$PGDATA"
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "copying the primary (pg_basebackup from ${PRIMARY_HOST:-postgres})"
  PGPASSWORD="$REPLICATION_PASSWORD" gosu postgres pg_basebackup \
    -h "${PRIMARY_HOST:-postgres}" -p "${PRIMARY_PORT:-5432}" -U replicator \
    -D "$PGDATA" -R -X stream -S secinf_replica --checkpoint=fast
fi
exec docker-entrypoint.sh "$@"
