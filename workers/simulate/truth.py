"""Ground truth from clean trajectories, by the definitions in docs/events.md.

Single-actor events (enter, exit, dwell, stop, choose_route, startle) are
computed for every agent; pairwise events for every pair inside one scenario
group (the placer guarantees agents of different groups stay >= 10 m apart).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .geometry import F64, as_array, distance_to_segments, points_in_polygon
from .motion import I64, heading_diff_deg, velocity

EPS = 1e-9
Event = dict[str, Any]


@dataclass
class Track:
    id: str
    frames: I64
    xy: F64
    fps: float

    def __post_init__(self) -> None:
        self.t = self.frames / self.fps
        self.v = velocity(self.xy, self.t)
        self.speed = np.hypot(self.v[:, 0], self.v[:, 1])


@dataclass
class ZoneDef:
    name: str
    kind: str
    polygon: F64


@dataclass
class RouteDef:
    name: str
    from_zone: str
    polyline: F64


@dataclass
class TriggerDef:
    name: str
    t: float
    position: F64
    radius: float


def runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Inclusive index ranges of the True runs of a boolean array."""
    if len(mask) == 0 or not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist(),
                    strict=True))


def merge_runs(rs: list[tuple[int, int]], frames: I64, fps: float,
               gap: float) -> list[tuple[int, int]]:
    """Merge runs whose gap (time between last true and next true frame) <= gap."""
    out: list[tuple[int, int]] = []
    for s, e in rs:
        if out and (frames[s] - frames[out[-1][1]]) / fps <= gap + EPS:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _dur(frames: I64, s: int, e: int, fps: float) -> float:
    return float(frames[e] - frames[s]) / fps


def _event(kind: str, actors: dict[str, str], start: float, end: float,
           **attributes: Any) -> Event:
    return {"type": kind, "actors": actors, "start": round(start, 6), "end": round(end, 6),
            "attributes": attributes}


# --- single actor -------------------------------------------------------------------


def zone_transitions(tr: Track, inside: NDArray[np.bool_]) -> tuple[
        list[int], list[int], list[tuple[int, int]]]:
    """Debounced enters, exits (indices of c) and stays (first, last inside index)."""
    enters: list[int] = []
    exits: list[int] = []
    stays: list[tuple[int, int]] = []
    n = len(inside)
    cuts = [0, *(np.flatnonzero(np.diff(inside.astype(np.int8))) + 1).tolist(), n]
    state = bool(inside[0])
    stay_start = 0 if state else -1
    for s, e in itertools.pairwise(cuts):
        val = bool(inside[s])
        if val == state or _dur(tr.frames, s, e - 1, tr.fps) < 1.0 - EPS:
            continue
        state = val
        if val:
            enters.append(s)
            stay_start = s
        else:
            exits.append(s)
            stays.append((stay_start, s - 1))
    if state:
        stays.append((stay_start, n - 1))
    return enters, exits, stays


def single_actor_events(tr: Track, zones: Sequence[ZoneDef],
                        routes: Sequence[RouteDef]) -> list[Event]:
    out: list[Event] = []
    lo, hi = tr.xy.min(axis=0), tr.xy.max(axis=0)
    for z in zones:
        if np.any(hi < z.polygon.min(axis=0)) or np.any(lo > z.polygon.max(axis=0)):
            continue
        inside = points_in_polygon(tr.xy, z.polygon)
        if not inside.any():
            continue
        enters, exits, stays = zone_transitions(tr, inside)
        for i in enters:
            out.append(_event("enter", {"actor": tr.id}, tr.t[i] - 0.5, tr.t[i] + 0.5, zone=z.name))
        for i in exits:
            out.append(_event("exit", {"actor": tr.id}, tr.t[i] - 0.5, tr.t[i] + 0.5, zone=z.name))
            if z.kind == "branch":
                out.extend(_choose_route(tr, i, z, routes))
        for s, e in stays:
            if _dur(tr.frames, s, e, tr.fps) >= 8.0 - EPS:
                out.append(_event("dwell", {"actor": tr.id}, tr.t[s], tr.t[e], zone=z.name))
    for s, e in runs(tr.speed < 0.2):
        if _dur(tr.frames, s, e, tr.fps) >= 2.0 - EPS:
            out.append(_event("stop", {"actor": tr.id}, tr.t[s], tr.t[e]))
    return out


def _choose_route(tr: Track, i: int, zone: ZoneDef, routes: Sequence[RouteDef]) -> list[Event]:
    c = tr.t[i]
    if tr.t[-1] < c + 3.0 - EPS:
        return []
    window = (tr.t >= c - EPS) & (tr.t <= c + 3.0 + EPS)
    best: tuple[float, str] | None = None
    for r in routes:
        if r.from_zone != zone.name:
            continue
        worst = float(distance_to_segments(tr.xy[window], r.polyline).max())
        if worst <= 1.5 + EPS and (best is None or worst < best[0]):
            best = (worst, r.name)
    if best is None:
        return []
    return [_event("choose_route", {"actor": tr.id}, c, c + 3.0, zone=zone.name, route=best[1])]


def startle_events(tracks: Iterable[Track], triggers: Sequence[TriggerDef]) -> list[Event]:
    out: list[Event] = []
    for tr in tracks:
        fps = tr.fps
        w = round(fps * 1.0)
        for trig in triggers:
            ft = round(trig.t * fps)
            k = ft - int(tr.frames[0])
            if k < 0 or k >= len(tr.frames):
                continue
            if float(np.hypot(*(tr.xy[k] - trig.position))) > trig.radius + EPS:
                continue
            lat = tr.t - trig.t
            cand = np.flatnonzero((lat >= 0.2 - EPS) & (lat <= 1.5 + EPS))
            cand = cand[(cand - w >= 0) & (cand + w < len(tr.frames))]
            if len(cand) == 0:
                continue
            vp = (tr.xy[cand + w] - tr.xy[cand]) * (fps / w)
            vm = (tr.xy[cand] - tr.xy[cand - w]) * (fps / w)
            mag = np.hypot(*(vp - vm).T)
            j = int(np.flatnonzero(mag >= mag.max() - EPS)[0])
            sp, sm = float(np.hypot(*vp[j])), float(np.hypot(*vm[j]))
            ang = float(heading_diff_deg(vp[j:j + 1], vm[j:j + 1])[0]) if min(sp, sm) > EPS else 0.0
            if abs(sp - sm) >= 1.0 - EPS or ang >= 45.0 - EPS:
                s = float(tr.t[cand[j]])
                out.append(_event("startle", {"actor": tr.id}, s, s + 1.0,
                                  trigger=trig.name, latency=round(s - trig.t, 6)))
    return out


# --- pairs --------------------------------------------------------------------------


@dataclass
class PairView:
    """Two tracks on their common frames."""

    frames: I64
    fps: float
    pa: F64
    pb: F64
    va: F64
    vb: F64
    sa: F64
    sb: F64

    @classmethod
    def of(cls, a: Track, b: Track) -> PairView | None:
        lo = max(int(a.frames[0]), int(b.frames[0]))
        hi = min(int(a.frames[-1]), int(b.frames[-1]))
        if hi - lo < 1:
            return None
        ia = slice(lo - int(a.frames[0]), hi - int(a.frames[0]) + 1)
        ib = slice(lo - int(b.frames[0]), hi - int(b.frames[0]) + 1)
        return cls(a.frames[ia], a.fps, a.xy[ia], b.xy[ib], a.v[ia], b.v[ib], a.speed[ia],
                   b.speed[ib])

    def offsets(self, heading: F64) -> tuple[F64, F64]:
        """Longitudinal and lateral offset of b from a in a frame given by unit headings."""
        d = self.pb - self.pa
        lon = d[:, 0] * heading[:, 0] + d[:, 1] * heading[:, 1]
        lat = heading[:, 0] * d[:, 1] - heading[:, 1] * d[:, 0]
        return lon, lat


def _unit(v: F64) -> F64:
    n = np.hypot(v[:, 0], v[:, 1])
    out = np.zeros_like(v)
    ok = n > EPS
    out[ok] = v[ok] / n[ok, None]
    return out


def _interval_events(kind: str, mask: NDArray[np.bool_], pv: PairView,
                     actors: dict[str, str], gap: float = 0.5,
                     min_s: float = 5.0) -> list[Event]:
    out = []
    for s, e in merge_runs(runs(mask), pv.frames, pv.fps, gap):
        if _dur(pv.frames, s, e, pv.fps) >= min_s - EPS:
            out.append(_event(kind, actors, pv.frames[s] / pv.fps, pv.frames[e] / pv.fps))
    return out


def pair_events(a: Track, b: Track, people: bool = True) -> list[Event]:
    """Every pairwise event between a and b (both role orders); accompany, meet and
    handover only when both are people (docs/events.md, v2)."""
    pv = PairView.of(a, b)
    if pv is None:
        return []
    out: list[Event] = []
    hd = heading_diff_deg(pv.va, pv.vb)
    moving = (pv.sa > 0.5) & (pv.sb > 0.5)
    t = pv.frames / pv.fps
    for lead, other, view, s_lead, s_other in (
        (a, b, pv, pv.sa, pv.sb),
        (b, a, PairView(pv.frames, pv.fps, pv.pb, pv.pa, pv.vb, pv.va, pv.sb, pv.sa), pv.sb, pv.sa),
    ):
        lon, lat = view.offsets(_unit(view.va))
        fol = (lon >= -8.0) & (lon <= -1.5) & (np.abs(lat) < 1.0) & (hd < 30.0) & moving
        out += _interval_events("follow", fol, view, {"leader": lead.id, "follower": other.id})
        cond = (np.abs(lat) < 3.0) & moving & (s_other > s_lead) & (hd < 45.0)
        label = np.where(lon <= -2.0, -1, np.where(lon >= 2.0, 1, 0))
        marks = np.flatnonzero(label != 0)
        for i, j in itertools.pairwise(marks):
            if label[i] == -1 and label[j] == 1 and cond[i:j + 1].all():
                out.append(_event("overtake", {"passer": other.id, "passed": lead.id}, t[i], t[j]))
    x, y = (a, b) if int(a.id) < int(b.id) else (b, a)
    sym = {"a": x.id, "b": y.id}
    mid = _unit(_unit(pv.va) + _unit(pv.vb))
    lon, lat = pv.offsets(mid)
    if not people:
        return out
    # v2: no lateral floor, at most 1.5 m sideways, gaps <= 2 s joined.
    acc = ((np.abs(lon) < 1.0) & (np.abs(lat) <= 1.5) & (hd < 20.0)
           & moving & (np.hypot(mid[:, 0], mid[:, 1]) > 0.5))
    out += _interval_events("accompany", acc, pv, sym, gap=2.0)
    dist = np.hypot(*(pv.pb - pv.pa).T)
    # v2: every d < 2 run (gaps <= 5 s joined) lasting >= 4 s, standing or walking.
    out += _interval_events("meet", dist < 2.0, pv, sym, gap=5.0, min_s=4.0)
    far = dist > 3.0
    close_runs = runs(dist < 2.0)
    for s, e in close_runs:
        parted = far[:s].any() and far[e + 1:].any()
        if not parted:
            continue
        if _dur(pv.frames, s, e, pv.fps) < 4.0 - EPS:
            slow = (dist[s:e + 1] < 1.2) & (pv.sa[s:e + 1] < 0.5) & (pv.sb[s:e + 1] < 0.5)
            for hs, he in runs(slow):
                d = _dur(pv.frames, s + hs, s + he, pv.fps)
                if 0.5 - EPS <= d <= 3.0 + EPS:
                    out.append(_event("handover", sym, t[s + hs], t[s + he]))
    return out


def zone_defs(zones: Iterable[Any]) -> list[ZoneDef]:
    return [ZoneDef(z.name, z.kind, as_array(z.polygon)) for z in zones]


def route_defs(routes: Iterable[Any]) -> list[RouteDef]:
    return [RouteDef(r.name, r.from_zone, as_array(r.polyline)) for r in routes]


def close_pairs(tracks: Sequence[Track], radius: float = 10.0) -> list[tuple[int, int]]:
    """Index pairs (i < j) of tracks that are within `radius` at some common frame: every
    pairwise definition needs that (follow: <= 8.1 m; overtake: < 3.6 m when beside)."""
    if len(tracks) < 2:
        return []
    frames = np.concatenate([tr.frames for tr in tracks])
    owner = np.repeat(np.arange(len(tracks)), [len(tr.frames) for tr in tracks])
    xy = np.vstack([tr.xy for tr in tracks])
    order = np.argsort(frames, kind="stable")
    frames, owner, xy = frames[order], owner[order], xy[order]
    cuts = np.flatnonzero(np.diff(frames)) + 1
    found: set[tuple[int, int]] = set()
    for who, pos in zip(np.split(owner, cuts), np.split(xy, cuts), strict=True):
        if len(who) < 2:
            continue
        d = np.hypot(pos[:, None, 0] - pos[None, :, 0], pos[:, None, 1] - pos[None, :, 1])
        ii, jj = np.nonzero(np.triu(d < radius, 1))
        lo, hi = np.minimum(who[ii], who[jj]), np.maximum(who[ii], who[jj])
        found.update(zip(lo.tolist(), hi.tolist(), strict=True))
    return sorted(found)
