"""What every label importer shares: the time base, symmetric actors, event order, the
truth document and its atomic write."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from workers.errors import UserError
from workers.evaluate.truth import parse_truth
from workers.ingest.schema import parse_iso_time

DEFAULT_TIME_ORIGIN = "2026-01-01T00:00:00Z"
"""The origin `secinf ingest` and `secinf simulate` use unless told otherwise."""
TIME_DECIMALS = 6
"""Seconds are written to the microsecond (what ingest stores)."""


@dataclass(frozen=True)
class TimeBase:
    """Frame numbers → seconds: t = (frame - frame0) / fps."""

    fps: float
    frame0: int

    def seconds(self, frame: float) -> float:
        return round((frame - self.frame0) / self.fps, TIME_DECIMALS)

    def as_dict(self) -> dict[str, Any]:
        return {"fps": self.fps, "frame0": self.frame0}


@dataclass
class Imported:
    """An imported truth document and what the import noticed on the way."""

    truth: dict[str, Any]
    time_base: TimeBase
    notes: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.truth["events"]:
            out[e["type"]] = out.get(e["type"], 0) + 1
        return dict(sorted(out.items()))


def check_fps(fps: float, where: str = "--fps") -> float:
    if not (math.isfinite(fps) and 0 < fps < 1e6):
        raise UserError(f"{where} {fps}: frames per second must be a positive number")
    return float(fps)


def id_key(track_id: str) -> tuple[int, int | str]:
    """Numeric ids sort as numbers, others after them as text."""
    try:
        return (0, int(track_id))
    except ValueError:
        return (1, track_id)


def norm_id(raw: str) -> str:
    """An id as written, with integral numbers normalised ('1.0000000e+00' → '1')."""
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        return text
    if math.isfinite(value) and value == int(value) and not text.isdigit():
        return str(int(value))
    return text


def pair_actors(p: str, q: str) -> dict[str, str]:
    """Roles of a symmetric type: a = the smaller (numeric) id."""
    a, b = sorted((p, q), key=id_key)
    return {"a": a, "b": b}


def event(etype: str, actors: dict[str, str], start: float, end: float,
          attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": etype, "actors": actors, "start": start, "end": end,
            "attributes": attributes or {}}


def sort_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """By start, then type, then actor ids (by role)."""
    return sorted(events, key=lambda e: (e["start"], e["type"],
                                         [id_key(v) for _, v in sorted(e["actors"].items())],
                                         e["end"]))


def parse_time_origin(value: str | None) -> str:
    """An ISO time → the truth file's `time_origin` text (UTC, `Z`)."""
    if value is None:
        return DEFAULT_TIME_ORIGIN
    return parse_iso_time(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


def truth_document(source: str, time_origin: str,
                   events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The design's truth.json (time origin normalised to UTC), checked by the parser
    `secinf evaluate` uses."""
    doc = {"source": source, "time_origin": parse_time_origin(time_origin),
           "events": sort_events(events)}
    parse_truth(doc, f"truth of {source}")
    return doc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_truth(doc: dict[str, Any], out: Path) -> Path:
    """Write atomically: a temporary file beside `out`, then rename (a failure leaves no
    partial file and an earlier `out` untouched)."""
    target = out.expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UserError(f"--out {out} is a directory; name the truth file, e.g. "
                        f"{out / 'truth.json'}")
    if not parent.is_dir():
        raise UserError(f"--out {out}: folder {parent} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"--out {out}: cannot write it ({exc.strerror})") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
