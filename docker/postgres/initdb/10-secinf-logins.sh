#!/usr/bin/env bash
# Runs once, when the data volume is empty (the postgres image's initdb hook).
# Creates the two login roles that connect over TCP with passwords from the environment:
#   authenticator  PostgREST's and the Streamlit app's login (NOINHERIT: it only switches to the API roles)
#   pipeline       workers (queue, scoring) and pg_cron jobs
#   secinf_monitor postgres_exporter (the monitoring views only; migration 0026)
# Migrations 0001 and 0026 create them when missing (0001 grants the API roles to
# authenticator); they leave existing roles (and their passwords) alone. To change a password later:
#   ALTER ROLE authenticator PASSWORD '…';   (then update .env and recreate postgrest)
set -euo pipefail
: "${AUTHENTICATOR_PASSWORD:?set AUTHENTICATOR_PASSWORD (see docker/.env.example)}"
: "${PIPELINE_PASSWORD:?set PIPELINE_PASSWORD (see docker/.env.example)}"
: "${MONITOR_PASSWORD:?set MONITOR_PASSWORD (see docker/.env.example)}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v auth_pw="$AUTHENTICATOR_PASSWORD" -v pipe_pw="$PIPELINE_PASSWORD" \
     -v mon_pw="$MONITOR_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE authenticator LOGIN NOINHERIT PASSWORD %L', :'auth_pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') \gexec
SELECT format('CREATE ROLE pipeline LOGIN PASSWORD %L', :'pipe_pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pipeline') \gexec
SELECT format('CREATE ROLE secinf_monitor LOGIN NOINHERIT CONNECTION LIMIT 5 PASSWORD %L',
              :'mon_pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'secinf_monitor') \gexec
SQL
