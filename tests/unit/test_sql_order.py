"""The repeatable tier's files (sql/) run in file-name order: each name is a unique
three-digit number and a name that says what the file holds (pgai's
check_sql_file_order). Ranges: 0xx auth and audit, 1xx tenancy, 2xx the API and billing,
3xx ingest, 4xx features and the pipeline, 5xx review and candidates, 6xx jobs, 7xx scoring,
datasets, files and records, 8xx-94x cron schedules, analytics, policies and monitoring,
96x analysts' limits, 97x-98x grants, 999 the chunk lockdown after every grant."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from workers.db.migrate import sql_files

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
NAME = re.compile(r"^(\d{3})_[a-z][a-z0-9_]*\.sql$")


def test_every_sql_file_has_a_unique_three_digit_number() -> None:
    names = [p.name for p in sorted(SQL_DIR.glob("*"))]
    assert names, "no sql/ files found"
    bad = [n for n in names if not NAME.match(n)]
    assert not bad, f"name these NNN_what_it_holds.sql (three digits, lower case): {bad}"
    numbers = Counter(n[:3] for n in names)
    twice = sorted(f"{k}: {[n for n in names if n.startswith(k)]}" for k, v in numbers.items()
                   if v > 1)
    assert not twice, f"numbers used twice (give each file its own): {twice}"
    assert not [n for n in names if "_zz_" in n], "order by number, not by a zz_ prefix"


def test_the_runner_applies_them_in_number_order() -> None:
    applied = [p.name for p in sql_files(SQL_DIR)]
    assert applied == sorted(applied, key=lambda n: int(n[:3]))
    assert applied[-1] == "999_lock_down_chunks.sql"  # after every grant (020_hypertable_access)
