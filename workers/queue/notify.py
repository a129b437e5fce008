"""Typed NOTIFY payloads of the work queue (the trigger in sql/600_jobs.sql sends them), and
the secret channel names they travel on (auth.channel, sql/000_auth.sql): PostgreSQL lets any
role LISTEN on any name, so a channel's name is known only to the owner and the pipeline."""

from __future__ import annotations

import json
from typing import Any, Literal, TypedDict

import psycopg

JOBS = "jobs"
"""The purpose of the channel the enqueue trigger notifies on."""
CANDIDATES = "candidates"
"""The purpose of the channel the candidates stage notifies on."""


def channel_name(conn: psycopg.Connection[Any], purpose: str) -> str:
    """The secret channel name of `purpose` (needs the pipeline role or an admin)."""
    row = conn.execute("SELECT auth.channel(%s)", (purpose,)).fetchone()
    assert row is not None
    value = row[0] if isinstance(row, tuple) else next(iter(row.values()))
    return str(value)


class JobNotice(TypedDict):
    """`{"type": "job", "kind": "echo"}`: a job of that kind is due now (no job id and no
    project: the worker's claim finds the job)."""

    type: Literal["job"]
    kind: str


def parse_notice(payload: str) -> JobNotice | None:
    """The notice in a NOTIFY payload, or None when it is not one of ours."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if (
        not isinstance(data, dict)
        or data.get("type") != "job"
        or not isinstance(data.get("kind"), str)
    ):
        return None
    return JobNotice(type="job", kind=data["kind"])
