"""The watchdog's memory reading (plpython/backend_memory.py) and the status lines of what
of the analyst limits does not hold (workers/db/checks.py)."""

from __future__ import annotations

import os
from pathlib import Path

from plpython.backend_memory import private_kb
from workers.db.checks import analyst_limit_problems

STATUS = """Name:\tpostgres
VmRSS:\t  181220 kB
RssAnon:\t  167596 kB
RssFile:\t   11412 kB
RssShmem:\t    2212 kB
"""


def test_private_memory_is_rss_anon(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "status").write_text(STATUS)
    assert private_kb(42, str(tmp_path)) == 167596


def test_a_gone_or_unreadable_process_reads_as_none(tmp_path: Path) -> None:
    assert private_kb(42, str(tmp_path)) is None
    (tmp_path / "43").mkdir()
    (tmp_path / "43" / "status").write_text("Name:\tpostgres\n")  # a kernel without RssAnon
    assert private_kb(43, str(tmp_path)) is None


def test_this_process_reads_from_proc() -> None:
    if not Path("/proc/self/status").exists():
        return
    kb = private_kb(os.getpid())
    assert kb is not None and kb > 0


def test_what_holds_prints_nothing_and_each_hole_names_its_fix() -> None:
    ok = {"public_connect": False, "public_temp": False, "watchdog_scheduled": True,
          "memory_readable": True, "hba_readable": True, "open_databases": []}
    assert analyst_limit_problems(ok) == []
    assert analyst_limit_problems({**ok, "watchdog_scheduled": None}) == []  # cron elsewhere
    lines = analyst_limit_problems({**ok, "public_temp": True, "watchdog_scheduled": False,
                                    "memory_readable": False,
                                    "open_databases": ["postgres", "other"]})
    assert len(lines) == 4
    assert "SELECT auth.lock_down_database();" in lines[0]
    assert "secinf-analyst-watchdog" in lines[1]
    assert "cannot cap analysts' memory" in lines[2]
    assert lines[3].startswith("analysts can connect to other databases: postgres, other")
    assert analyst_limit_problems(None) == [
        "analyst limits not installed: run `secinf db migrate`"]
