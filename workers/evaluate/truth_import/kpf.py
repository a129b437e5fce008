"""KPF activities (MEVA/DIVA) → truth, through a label map (default: MEVA's).

Reads one clip: `*.activities.yml` (required), `*.types.yml` (classes, needed when a rule
names an `actor_class`) and `*.geom.yml` (the first frame, which is t = 0, and the boxes
that link a vehicle's stop to its start). Frame spans are inclusive: an activity over
frames [f0, f1] is the event [(f0 - frame0) / fps, (f1 - frame0) / fps].
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workers.errors import UserError
from workers.ingest.kpf import (
    Activity,
    ActorSpan,
    GeomScan,
    clip_stem,
    link_tracks_wanted,
    read_activities,
    read_types,
    scan_geom,
    track_links,
)

from .common import (
    DEFAULT_TIME_ORIGIN,
    Imported,
    TimeBase,
    check_fps,
    event,
    pair_actors,
    truth_document,
)
from .label_map import LabelMap, Rule, load_label_map

LINK_IOU_DECIMALS = 2


def _kind_of(path: Path) -> str | None:
    name = path.name.lower()
    for kind in ("activities", "geom", "types"):
        if name.endswith((f".{kind}.yml", f".{kind}.yaml")):
            return kind
    return None


def resolve_inputs(inputs: list[Path]) -> dict[str, Path]:
    """{activities, geom?, types?} from a clip folder (or its `raw/`) or the files."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            folder = p / "raw" if not list(p.glob("*.activities.y*ml")) and \
                (p / "raw").is_dir() else p
            files += sorted(folder.glob("*.y*ml"))
        else:
            files.append(p)
    found: dict[str, list[Path]] = {}
    for f in files:
        kind = _kind_of(f)
        if kind:
            found.setdefault(kind, []).append(f)
    if not found.get("activities"):
        raise UserError(f"{', '.join(map(str, inputs))}: no *.activities.yml; give a KPF clip "
                        "folder or its files (activities, geom, types)")
    multi = [k for k, v in found.items() if len(v) > 1]
    if multi:
        raise UserError(f"more than one *.{multi[0]}.yml "
                        f"({', '.join(p.name for p in found[multi[0]])}); import one clip "
                        "at a time")
    out = {k: v[0] for k, v in found.items()}
    stems = {clip_stem(p) for p in out.values()}
    if len(stems) > 1:
        raise UserError(f"the KPF files belong to different clips ({', '.join(sorted(stems))})"
                        "; give the files of one clip")
    return out


class _Builder:
    """Events of one clip under one label map."""

    def __init__(self, base: TimeBase, classes: dict[str, str] | None, scan: GeomScan | None):
        self.base = base
        self.classes = classes
        self.scan = scan
        self.events: list[dict[str, Any]] = []
        self.notes: Counter[str] = Counter()

    def _actors(self, act: Activity, rule: Rule) -> list[ActorSpan]:
        if rule.actor_class is None or self.classes is None:
            return list(act.actors)
        keep = []
        for a in act.actors:
            cls = self.classes.get(a.track_id)
            if cls is None:
                self.notes[f"{act.name}: actor without a type (not in *.types.yml) skipped"] += 1
            elif cls == rule.actor_class:
                keep.append(a)
        return keep

    def _long_enough(self, start: float, end: float, rule: Rule) -> bool:
        if end - start < rule.min_duration_s:
            self.notes[f"{rule.type}: shorter than {rule.min_duration_s:g} s dropped"] += 1
            return False
        return True

    def pairs(self, rule: Rule, acts: list[Activity]) -> None:
        made: list[dict[str, Any]] = []
        for act in acts:
            people = self._actors(act, rule)
            if len(people) < 2:
                self.notes[f"{act.name}: fewer than two {rule.actor_class or 'actor'}s, "
                           "no pair"] += 1
                continue
            for p, q in itertools.combinations(people, 2):
                if p.track_id == q.track_id:
                    continue
                first, last = max(p.start, q.start), min(p.end, q.end)
                if last < first:
                    self.notes[f"{act.name}: pair never together, skipped"] += 1
                    continue
                made.append(event(rule.type, pair_actors(p.track_id, q.track_id),
                                  self.base.seconds(first), self.base.seconds(last),
                                  {"activities": [act.name], "group_size": len(people)}))
        for e in _merge_overlapping(made):
            if self._long_enough(e["start"], e["end"], rule):
                self.events.append(e)

    def actors(self, rule: Rule, acts: list[Activity]) -> None:
        made = [event(rule.type, {rule.role: a.track_id}, self.base.seconds(a.start),
                      self.base.seconds(a.end), {"activities": [act.name]})
                for act in acts for a in self._actors(act, rule)]
        for e in _merge_overlapping(made):
            if self._long_enough(e["start"], e["end"], rule):
                self.events.append(e)

    def stop_start(self, rule: Rule, acts: list[Activity]) -> None:
        usable = []
        for act in acts:
            kept = self._actors(act, rule)
            if len(kept) != 1:
                self.notes[f"{act.name}: needs exactly one {rule.actor_class or 'actor'}, "
                            f"has {len(kept)}; skipped"] += 1
                continue
            usable.append(Activity(act.name, act.activity_id, act.start, act.end,
                                   (kept[0],)))
        assert self.scan is not None
        links = track_links(usable, self.scan, rule.stop_activities, rule.start_activities,
                            rule.min_link_iou)
        linked = {id(lk.stop) for lk in links} | {id(lk.start) for lk in links}
        sec = self.base.seconds
        for lk in links:
            attrs: dict[str, Any] = {"paired": True,
                                     "activities": [lk.stop.name, lk.start.name]}
            if lk.start_track != lk.stop_track:
                attrs["merged_track"] = lk.start_track
            attrs.update({"link_iou": round(lk.iou, LINK_IOU_DECIMALS),
                          "stopping": [sec(lk.stop.start), sec(lk.stop.end)],
                          "starting": [sec(lk.start.start), sec(lk.start.end)]})
            start, end = sec(lk.stop.start), sec(lk.start.start)
            if self._long_enough(start, end, rule):
                self.events.append(event(rule.type, {"actor": lk.stop_track}, start, end,
                                         attrs))
        for act in usable:
            if id(act) in linked:
                continue
            start, end = sec(act.start), sec(act.end)
            if self._long_enough(start, end, rule):
                self.events.append(event(rule.type, {"actor": act.actors[0].track_id},
                                         start, end,
                                         {"activities": [act.name], "paired": False}))


def _merge_overlapping(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One event per (type, actors) run of overlapping spans: activities united, the
    largest group kept."""
    out: list[dict[str, Any]] = []
    by_key: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
    for e in sorted(events, key=lambda e: (e["start"], e["end"])):
        key = (e["type"], tuple(sorted(e["actors"].items())))
        cur = by_key.get(key)
        if cur is not None and e["start"] <= cur["end"]:
            cur["end"] = max(cur["end"], e["end"])
            attrs = cur["attributes"]
            attrs["activities"] += [a for a in e["attributes"]["activities"]
                                    if a not in attrs["activities"]]
            if "group_size" in attrs:
                attrs["group_size"] = max(attrs["group_size"], e["attributes"]["group_size"])
            continue
        by_key[key] = e
        out.append(e)
    return out


def kpf_truth(inputs: list[Path], mapping: LabelMap | None = None, *,
              source: str | None = None, time_origin: str = DEFAULT_TIME_ORIGIN,
              fps: float | None = None, frame0: int | None = None) -> Imported:
    """Import one KPF clip (see the module docstring)."""
    label_map = mapping or load_label_map()
    files = resolve_inputs(inputs)
    acts = read_activities(files["activities"])
    classes: dict[str, str] | None = None
    if label_map.needs_classes:
        if "types" not in files:
            raise UserError(f"{files['activities']}: the label map {label_map.path} keeps "
                            "actors by class; give the clip's *.types.yml too")
        classes = read_types(files["types"])
    stop_rules = [r for r in label_map.rules if r.kind == "stop_start"]
    scan: GeomScan | None = None
    if "geom" in files:
        wanted: set[str] = set()
        for r in stop_rules:
            wanted |= link_tracks_wanted(acts, r.stop_activities, r.start_activities)
        scan = scan_geom(files["geom"], wanted)
    elif stop_rules or frame0 is None:
        need = ("its boxes link stops to starts" if stop_rules
                else "its first frame is t = 0, as when `secinf ingest` reads it")
        raise UserError(f"{files['activities']}: give the clip's *.geom.yml too ({need})")
    first = frame0 if frame0 is not None else (scan.first_frame if scan else None)
    if first is None:
        raise UserError(f"{files['geom']}: no `- {{ geom: ... }}` records, so no first "
                        "frame; is it the clip's geom file?")
    base = TimeBase(check_fps(fps if fps is not None else label_map.fps), int(first))
    builder = _Builder(base, classes, scan)
    unmapped: Counter[str] = Counter()
    mapped = label_map.activity_names()
    for act in acts:
        if act.name not in mapped:
            unmapped[act.name] += 1
    build = {"pairs": builder.pairs, "actors": builder.actors,
             "stop_start": builder.stop_start}
    for rule in label_map.rules:
        build[rule.kind](rule, [a for a in acts if a.name in rule.activities])
    notes = [f"{text} (x{n})" for text, n in sorted(builder.notes.items())]
    if unmapped:
        notes.append("activities not in the label map (no events): " + ", ".join(
            f"{name} {n}" for name, n in sorted(unmapped.items())))
    clip = clip_stem(files["activities"])
    doc = truth_document(source or clip, time_origin, builder.events)
    return Imported(doc, base, notes, {k: str(v) for k, v in files.items()}
                    | {"map": label_map.path})


def import_kpf(raw_dir: Path | list[Path], mapping: LabelMap | Path | None = None, *,
               source: str | None = None, time_origin: str = DEFAULT_TIME_ORIGIN,
               fps: float | None = None, frame0: int | None = None) -> dict[str, Any]:
    """The truth document of a KPF clip folder (or its files); `mapping`: a LabelMap, a
    map file, or None for the MEVA default."""
    inputs = raw_dir if isinstance(raw_dir, list) else [raw_dir]
    label_map = mapping if isinstance(mapping, LabelMap) else load_label_map(mapping)
    return kpf_truth([Path(p) for p in inputs], label_map, source=source,
                     time_origin=time_origin, fps=fps, frame0=frame0).truth
