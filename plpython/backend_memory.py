"""Private memory of a server process, for the analyst watchdog (sql/961_analyst_limits.sql).

RssAnon in /proc/<pid>/status is the anonymous memory a backend has resident: its sorts,
hashes, tuplestores and caches (what work_mem lets it take), not the shared buffers every
backend maps (RssShmem) nor the binary (RssFile).
"""

from __future__ import annotations

from pathlib import Path


def private_kb(pid: int, proc: str = "/proc") -> int | None:
    """RssAnon of process `pid` in kB; None when it is gone or its status is unreadable
    (another host's process, or /proc mounted with hidepid)."""
    try:
        text = (Path(proc) / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("RssAnon:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1])
            return None
    return None
