"""simulate(config): place scenarios, add background, compute truth, add noise."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from . import background as bg_mod
from . import behaviours as bh
from . import mingled
from .config import EVENT_TYPES, SceneConfig
from .geometry import as_array, bbox_distance
from .kinds import FREE
from .labels import labelled_truth
from .noise import CLASSES, Points, apply_noise, remap_events
from .placement import Placer
from .truth import (
    Track,
    TriggerDef,
    close_pairs,
    pair_events,
    route_defs,
    single_actor_events,
    startle_events,
    zone_defs,
)

TIME_ORIGIN = "2026-01-01T00:00:00Z"


@dataclass
class SimResult:
    """Everything one simulation produced; `tracks` and `truth` are what gets written."""

    config: SceneConfig
    tracks: pl.DataFrame
    clean: pl.DataFrame
    scene: dict[str, Any]
    truth: dict[str, Any]
    clean_truth: dict[str, Any]
    groups: list[list[str]] = field(default_factory=list)
    planted: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def _source(cfg: SceneConfig) -> str:
    return cfg.source or f"{cfg.preset}-{cfg.seed}"


def _place_all(cfg: SceneConfig, rng_build: np.random.Generator, placer: Placer) -> None:
    fps = cfg.fps
    counts: dict[str, int] = {str(k): n for k, n in cfg.scenarios.items()}
    counts.update({str(k): n for k, n in cfg.near_misses.items()})
    # 1. triggers: configured ones first, each hosting one startle if asked for.
    startles = counts.get("startle", 0)
    for trig in cfg.triggers:
        pos = np.asarray(trig.position, dtype=np.float64)
        if startles > 0:
            inst = bh.startle(rng_build, fps)
            assert inst.trigger is not None
            inst.trigger.radius = trig.radius
            inst.meta["trigger_name"] = trig.name
            if placer.try_place(inst, fixed_time=trig.t, fixed_pos=pos, tries=60):
                startles -= 1
                continue
        placer.reserve_trigger(trig.name, trig.t, pos, trig.radius)
    for kind, n in (("startle", startles), ("trigger_ignored", counts.get("trigger_ignored", 0))):
        for _ in range(n):
            placer.try_place(FREE[kind](rng_build, fps))
    # 2. anchored: zones and routes.
    region = cfg.background.region if cfg.background.agents > 0 else None
    zones = [z for z in cfg.zones if z.kind == "zone" and (
        region is None or bbox_distance(as_array(z.polygon), region).min() >= 12.0)] or [
        z for z in cfg.zones if z.kind == "zone"]
    branches = [z for z in cfg.zones if z.kind == "branch" and
                any(r.from_zone == z.name for r in cfg.routes)]
    anchored: list[tuple[str, int]] = []
    for kind in ("choose_route", "dwell", "pass_through", "short_stay", "zone_graze"):
        anchored += [(kind, i) for i in range(counts.get(kind, 0))]
    for kind, i in anchored:
        for _ in range(40):
            if kind == "choose_route":
                zone = branches[i % len(branches)]
                routes = [r for r in cfg.routes if r.from_zone == zone.name]
                inst = bh.choose_route(rng_build, zone, routes, i // len(branches))
            else:
                zone = zones[i % len(zones)]
                if kind == "dwell":
                    inst = bh.dwell(rng_build, zone)
                elif kind == "zone_graze":
                    inst = bh.zone_graze(rng_build, zone)
                elif kind == "short_stay":
                    inst = bh.pass_through(rng_build, zone, (4.6, 5.4), "short_stay")
                else:
                    inst = bh.pass_through(rng_build, zone, (2.5, 4.5), "pass_through")
            if placer.try_place(inst, tries=15, record=False):
                break
        else:
            placer.record_drop(kind)
    # 3. free scenarios, interleaved so that any shortage of space is shared.
    free = [k for k in FREE if k not in ("startle", "trigger_ignored")]
    rounds = max((counts.get(k, 0) for k in free), default=0)
    for r in range(rounds):
        for kind in free:
            if r < counts.get(kind, 0):
                placer.try_place(FREE[kind](rng_build, fps))


def _interacting(cfg: SceneConfig, groups: list[list[int]],
                 tracks: list[Track]) -> list[tuple[int, int]]:
    """Pairs whose pairwise events are computed: in an isolated scene the members of each
    planted group (nobody else comes within 10 m); in a mingled one every close pair."""
    if cfg.layout == "mingled":
        return close_pairs(tracks, 10.0)
    return [(p, q) for members in groups for i, p in enumerate(members) for q in members[i + 1:]]


def simulate(config: SceneConfig) -> SimResult:
    """Generate one scene deterministically from config (and its seed)."""
    started = time.perf_counter()
    cfg = config
    fps = cfg.fps
    r_build, r_place, r_bg, r_noise, r_ids = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(5))
    if cfg.layout == "mingled":
        placed, back = mingled.populate(cfg, r_place)
    else:
        placer = Placer(cfg, r_place)
        _place_all(cfg, r_build, placer)
        placed = placer.result
        back = bg_mod.generate(cfg, r_bg)

    # Agents: scripted first, then background; ids by first frame.
    n_script = len(placed.agents)
    first = [int(a.frames[0]) for a in placed.agents]
    if back.placed:
        bstarts = np.full(back.placed, np.iinfo(np.int64).max)
        np.minimum.at(bstarts, back.agent, back.frames)
        first += bstarts.tolist()
    n_agents = len(first)
    order = np.lexsort((r_ids.permutation(n_agents), np.asarray(first)))
    ids = np.empty(n_agents, dtype=np.int64)
    ids[order] = np.arange(1, n_agents + 1)

    cls_idx = {c: i for i, c in enumerate(CLASSES)}
    tracks: list[Track] = []
    for k, a in enumerate(placed.agents):
        tracks.append(Track(str(ids[k]), a.frames, a.xy, fps))
    if back.placed:
        border = np.flatnonzero(np.diff(back.agent)) + 1
        for j, (fr, xy) in enumerate(zip(np.split(back.frames, border), np.split(back.xy, border),
                                         strict=True)):
            tracks.append(Track(str(ids[n_script + j]), fr, xy, fps))
    classes = [a.script.cls for a in placed.agents] + back.cls

    zdefs, rdefs = zone_defs(cfg.zones), route_defs(cfg.routes)
    trigs = [TriggerDef(t.name, t.t, t.position, t.radius) for t in placed.triggers]
    events: list[dict[str, Any]] = []
    for tr in tracks:
        events += single_actor_events(tr, zdefs, rdefs)
    near = [tr for tr in tracks
            if any(tr.frames[0] <= round(tg.t * fps) <= tr.frames[-1] for tg in trigs)]
    events += startle_events(near, trigs)
    groups: list[list[int]] = [[] for _ in placed.instances]
    for k, a in enumerate(placed.agents):
        groups[a.group].append(k)
    for p, q in _interacting(cfg, groups, tracks):
        events += pair_events(tracks[p], tracks[q],
                              people=classes[p] == classes[q] == "pedestrian")
    if cfg.truth_style != "definitions":
        events = labelled_truth(cfg.truth_style, events, placed.instances, groups, tracks, fps,
                                placed.offsets)
    events.sort(key=lambda e: (e["start"], e["type"], sorted(e["actors"].items())))

    lens = [len(tr.frames) for tr in tracks]
    pts = Points(np.repeat(ids, lens), np.concatenate([tr.frames for tr in tracks]),
                 np.vstack([tr.xy for tr in tracks]),
                 np.repeat(np.array([cls_idx[c] for c in classes], dtype=np.int8), lens))
    trig_tuples = [(t.t, t.position, t.radius) for t in placed.triggers]
    noisy, log = apply_noise(pts, events, cfg.noise, fps, cfg.duration, cfg.extent, cfg.zones,
                             trig_tuples, r_noise)
    file_events = remap_events(events, log, fps)

    cls_names = np.array(CLASSES)
    out = pl.DataFrame({
        "track_id": noisy.track.astype(str), "frame": noisy.frame.astype(np.int64),
        "t": noisy.t.astype(np.float64), "x": noisy.xy[:, 0], "y": noisy.xy[:, 1],
        "class": cls_names[noisy.cls], "confidence": noisy.confidence.astype(np.float32),
    }).sort(["frame", "track_id"])
    clean = pl.DataFrame({
        "track_id": pts.track.astype(str), "frame": pts.frame, "t": pts.frame / fps,
        "x": pts.xy[:, 0], "y": pts.xy[:, 1], "class": cls_names[pts.cls],
    }).sort(["frame", "track_id"])

    source = _source(cfg)
    trigger_kinds = {t.name: t.kind for t in cfg.triggers}
    scene: dict[str, Any] = {
        "source": source, "preset": cfg.preset, "seed": cfg.seed, "fps": fps, "units": "m",
        "time_origin": TIME_ORIGIN, "duration": cfg.duration,
        "extent": [list(cfg.extent[0]), list(cfg.extent[1])],
        "zones": [{"name": z.name, "kind": z.kind, "polygon": [list(p) for p in z.polygon]}
                  for z in cfg.zones],
        "routes": [{"name": r.name, "from_zone": r.from_zone,
                    "polyline": [list(p) for p in r.polyline]} for r in cfg.routes],
        "triggers": [{"name": t.name, "kind": trigger_kinds.get(t.name, "bang"), "t": round(t.t, 6),
                      "position": [round(float(t.position[0]), 4), round(float(t.position[1]), 4)],
                      "radius": t.radius} for t in placed.triggers],
        "noise": cfg.noise.model_dump(),
    }
    planted = [{"kind": inst.kind, "near_miss": inst.near_miss,
                "actors": [str(ids[k]) for k in members], **(
                    {"route": inst.meta["route"]} if "route" in inst.meta else {})}
               for inst, members in zip(placed.instances, groups, strict=True)]
    per_type = Counter(e["type"] for e in events)
    stats = {
        "points": out.height, "tracks": int(out["track_id"].n_unique()) if out.height else 0,
        "events": {t: per_type.get(t, 0) for t in EVENT_TYPES},
        "planted": dict(Counter(p["kind"] for p in planted)),
        "dropped_scenarios": placed.dropped,
        "background_agents": back.placed, "id_switches": len(log.switches),
        "breaks": log.breaks, "untracked_stops": log.untracked_stops,
        "clipped_points": log.clipped,
        "false_tracks": len(log.false_tracks), "dropped_points": log.dropped,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return SimResult(
        config=cfg, tracks=out, clean=clean, scene=scene,
        truth={"source": source, "time_origin": TIME_ORIGIN, "events": file_events},
        clean_truth={"source": source, "time_origin": TIME_ORIGIN, "events": events},
        groups=[[str(ids[k]) for k in m] for m in groups], planted=planted, stats=stats,
    )
