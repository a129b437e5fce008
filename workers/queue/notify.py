"""Typed NOTIFY payloads of the work queue (the trigger in sql/60_jobs.sql sends them)."""

from __future__ import annotations

import json
from typing import Literal, TypedDict

CHANNEL = "jobs_queued"
"""The channel the enqueue trigger notifies on."""


class JobNotice(TypedDict):
    """`{"type": "job", "id": 42, "kind": "echo"}`: a job is due now."""

    type: Literal["job"]
    id: int
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
        or not isinstance(data.get("id"), int)
        or not isinstance(data.get("kind"), str)
    ):
        return None
    return JobNotice(type="job", id=data["id"], kind=data["kind"])
