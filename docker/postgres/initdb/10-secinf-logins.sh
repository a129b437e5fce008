#!/usr/bin/env bash
# Runs once, when the data volume is empty (the postgres image's initdb hook).
# Creates the two login roles that connect over TCP with passwords from the environment:
#   authenticator  PostgREST's and the Streamlit app's login (NOINHERIT: it only switches to the API roles)
#   pipeline       workers (queue, scoring) and pg_cron jobs
# Migration 0001 creates them when missing and grants the API roles to authenticator; it
# leaves existing roles (and their passwords) alone. To change a password later:
#   ALTER ROLE authenticator PASSWORD '…';   (then update .env and recreate postgrest)
set -euo pipefail
: "${AUTHENTICATOR_PASSWORD:?set AUTHENTICATOR_PASSWORD (see docker/.env.example)}"
: "${PIPELINE_PASSWORD:?set PIPELINE_PASSWORD (see docker/.env.example)}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v auth_pw="$AUTHENTICATOR_PASSWORD" -v pipe_pw="$PIPELINE_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE authenticator LOGIN NOINHERIT PASSWORD %L', :'auth_pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') \gexec
SELECT format('CREATE ROLE pipeline LOGIN PASSWORD %L', :'pipe_pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pipeline') \gexec
SQL
