"""Label maps: which published activity names become which secinf event types, and how.

A map is YAML (or JSON) with `fps` and a list of `events` rules; each rule has a `type`
(the secinf event type written to truth.json) and a `kind`:

* `pairs` — one symmetric event (roles a, b) per pair of `actor_class` actors of one
  instance of any of `activities`, over the frames both take part in;
* `actors` — one event per `actor_class` actor of an instance, role `role` (default
  `actor`), over that actor's frames;
* `stop_start` — `stop_activities` linked to the `start_activities` that end them (box IoU
  ≥ `min_link_iou`, see workers/ingest/kpf.py): one event per link or unlinked activity.

`actor_class` (optional) keeps actors whose class in the types file is that one;
`min_duration_s` (optional, default 0) drops shorter events.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workers.errors import UserError
from workers.ingest.files import read_text
from workers.settings import ONTOLOGIES_DIR

LABEL_MAPS_DIR = ONTOLOGIES_DIR / "label_maps"
MEVA_MAP = LABEL_MAPS_DIR / "meva.yaml"
KINDS = ("pairs", "actors", "stop_start")
_KEYS = {
    "pairs": {"type", "kind", "activities", "actor_class", "min_duration_s"},
    "actors": {"type", "kind", "activities", "actor_class", "min_duration_s", "role"},
    "stop_start": {"type", "kind", "stop_activities", "start_activities", "actor_class",
                   "min_duration_s", "min_link_iou"},
}


@dataclass(frozen=True)
class Rule:
    """One `events` entry of a label map."""

    type: str
    kind: str
    activities: tuple[str, ...] = ()
    """pairs / actors: the activity names; stop_start: stop and start names together."""
    stop_activities: tuple[str, ...] = ()
    start_activities: tuple[str, ...] = ()
    actor_class: str | None = None
    min_duration_s: float = 0.0
    role: str = "actor"
    min_link_iou: float = 0.5


@dataclass(frozen=True)
class LabelMap:
    """A parsed label map."""

    name: str
    fps: float
    rules: tuple[Rule, ...]
    path: str

    def activity_names(self) -> set[str]:
        return {a for r in self.rules for a in r.activities}

    @property
    def needs_classes(self) -> bool:
        return any(r.actor_class for r in self.rules)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) and v.strip() for v in value)):
        raise UserError(f"{where}: a list of activity names such as [person_talks_to_person]")
    return tuple(v.strip() for v in value)


def _number(raw: dict[str, Any], key: str, default: float, where: str, lo: float,
            hi: float) -> float:
    value = raw.get(key, default)
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not lo <= value <= hi):
        raise UserError(f"{where}.{key}: a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise UserError(f"{where}: each rule is a mapping with type and kind")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise UserError(f"{where}.kind: one of {', '.join(KINDS)}, got {kind!r}")
    extra = sorted(set(raw) - _KEYS[kind])
    if extra:
        raise UserError(f"{where}: unknown key(s) {', '.join(extra)} for kind {kind} "
                        f"(allowed: {', '.join(sorted(_KEYS[kind]))})")
    etype = raw.get("type")
    if not isinstance(etype, str) or not etype.strip():
        raise UserError(f"{where}.type: the secinf event type to write, e.g. meet")
    cls = raw.get("actor_class")
    if cls is not None and not isinstance(cls, str):
        raise UserError(f"{where}.actor_class: a class name from the types file, e.g. person")
    common = {"type": etype.strip(), "kind": kind, "actor_class": cls,
              "min_duration_s": _number(raw, "min_duration_s", 0.0, where, 0, 1e6)}
    if kind == "stop_start":
        stops = _names(raw.get("stop_activities"), f"{where}.stop_activities")
        starts = _names(raw.get("start_activities"), f"{where}.start_activities")
        return Rule(**common, activities=stops + starts, stop_activities=stops,
                    start_activities=starts,
                    min_link_iou=_number(raw, "min_link_iou", 0.5, where, 0, 1))
    role = raw.get("role", "actor")
    if not isinstance(role, str) or not role.strip():
        raise UserError(f"{where}.role: a role name such as actor")
    return Rule(**common, activities=_names(raw.get("activities"), f"{where}.activities"),
                role=role.strip())


def parse_label_map(data: Any, name: str) -> LabelMap:
    """Validate a parsed map; errors name the file and the key."""
    if not isinstance(data, dict) or not isinstance(data.get("events"), list) \
            or not data["events"]:
        raise UserError(f"{name}: a label map has `events:`, a list of rules (see "
                        f"{MEVA_MAP.name} for the MEVA default)")
    extra = sorted(set(data) - {"name", "fps", "events", "description"})
    if extra:
        raise UserError(f"{name}: unknown top-level key(s) {', '.join(extra)} (allowed: "
                        "name, description, fps, events)")
    fps = _number(data, "fps", 30.0, name, 1e-6, 1e6)
    rules = tuple(_rule(r, f"{name}: events[{i}]") for i, r in enumerate(data["events"]))
    seen: dict[str, str] = {}
    for r in rules:
        for a in r.activities:
            if a in seen:
                raise UserError(f"{name}: activity {a} is mapped twice ({seen[a]} and "
                                f"{r.type}); map each activity name once")
            seen[a] = r.type
    return LabelMap(str(data.get("name") or Path(name).stem), fps, rules, name)


def load_label_map(path: Path | None = None) -> LabelMap:
    """Read a label map (default: the MEVA map shipped in ontologies/label_maps/)."""
    p = path or MEVA_MAP
    text = read_text(p, "it", name=f"--map {p}")
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise UserError(f"--map {p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'} "
                        f"({exc})") from exc
    return parse_label_map(data, str(p))
