#!/usr/bin/env bash
# Runs once, when the data volume is empty (the postgres image's initdb hook), and only
# with REPLICATION_PASSWORD set: the `replicator` login (REPLICATION, no other right), a
# pg_hba.conf line letting it stream over the compose network, and the physical slot
# `secinf_replica` that keeps the WAL the read replica (the `replica` profile's
# postgres-replica service) still needs. On a volume made before, run the same by hand
# (docs/operations.md, "Read replica").
set -euo pipefail
if [ -z "${REPLICATION_PASSWORD:-}" ]; then
  echo "REPLICATION_PASSWORD is empty: no replicator login (the read replica needs one)"
  exit 0
fi
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v repl_pw="$REPLICATION_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE replicator LOGIN REPLICATION PASSWORD %L', :'repl_pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') \gexec
SELECT pg_create_physical_replication_slot('secinf_replica')
WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'secinf_replica');
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
