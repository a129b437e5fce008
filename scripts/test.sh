#!/usr/bin/env bash
# The whole check, as `make test` runs it: static checks first (fast failures), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

step "ruff"
"$VENV/bin/ruff" check .
step "mypy (strict, package)"
"$VENV/bin/mypy"
step "squawk (migrations)"
"$VENV/bin/squawk" --config .squawk.toml $(ls migrations/*.sql | grep -v '\.rollback\.sql$')
step "pytest"
"$VENV/bin/pytest" "$@"
