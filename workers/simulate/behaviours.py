"""Scripted scenarios: one builder per planted event type and per near miss.

Free scenarios are built in local coordinates (moving along +x around the origin)
and later rotated, translated and shifted in time by the placer. Anchored
scenarios (zones, routes) are built in world coordinates; only time is shifted.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from .config import RouteConfig, ZoneConfig
from .geometry import (
    F64,
    as_array,
    centroid,
    points_in_polygon,
    ray_exit_distance,
    unit,
)
from .motion import PathBuilder, Script

Rng = np.random.Generator


@dataclass
class LocalTrigger:
    """A trigger planted by a scenario: local time and position, radius."""

    t: float
    position: F64
    radius: float


@dataclass
class Instance:
    """A group of agents that may interact with each other and nobody else."""

    kind: str
    scripts: list[Script]
    anchored: bool = False
    touches: frozenset[str] = frozenset()
    trigger: LocalTrigger | None = None
    near_miss: bool = False
    meta: dict[str, object] = field(default_factory=dict)


def _ped(rng: Rng) -> float:
    return float(rng.uniform(1.1, 1.5))


def _aligned(x: float, fps: float) -> float:
    return round(x * fps) / fps


# --- movement -----------------------------------------------------------------


def stop(rng: Rng, fps: float) -> Instance:
    v = _ped(rng)
    b = PathBuilder("pedestrian", -rng.uniform(8, 14), 0.0)
    b.to(0.0, 0.0, v).wait(rng.uniform(3.0, 8.0)).to(rng.uniform(8, 14), 0.0, v)
    return Instance("stop", [b.build()])


def slow_down(rng: Rng, fps: float) -> Instance:
    v = _ped(rng)
    b = PathBuilder("pedestrian", -rng.uniform(8, 14), 0.0)
    b.to(0.0, 0.0, v).move(3.0, 0.0, rng.uniform(0.5, 0.7)).move(rng.uniform(8, 14), 0.0, v)
    return Instance("slow_down", [b.build()], near_miss=True)


# --- pairs moving together ----------------------------------------------------------


def _follow(rng: Rng, kind: str, gap: tuple[float, float], near: bool) -> Instance:
    if rng.random() < 0.2:
        cls, v, length = "cyclist", float(rng.uniform(4.0, 5.0)), float(rng.uniform(80, 110))
    else:
        cls, v, length = "pedestrian", _ped(rng), float(rng.uniform(30, 45))
    g = float(rng.uniform(*gap))
    lead = PathBuilder(cls, -length / 2, 0.0, role="leader").to(length / 2, 0.0, v).build()
    fol = PathBuilder(cls, -length / 2, 0.0, t=g / v, role="follower")
    fol.to(length / 2, 0.0, v)
    return Instance(kind, [lead, fol.build()], near_miss=near)


def follow(rng: Rng, fps: float) -> Instance:
    return _follow(rng, "follow", (2.5, 5.5), False)


def far_follow(rng: Rng, fps: float) -> Instance:
    return _follow(rng, "far_follow", (11.0, 14.0), True)


def _side_by_side(rng: Rng, kind: str, lateral: tuple[float, float], near: bool) -> Instance:
    v, length = _ped(rng), float(rng.uniform(25, 40))
    lat = float(rng.uniform(*lateral))
    lon = float(rng.uniform(-0.3, 0.3))
    a = PathBuilder("pedestrian", -length / 2, lat / 2).to(length / 2, lat / 2, v).build()
    b = PathBuilder("pedestrian", -length / 2 + lon, -lat / 2)
    b.to(length / 2 + lon, -lat / 2, v)
    return Instance(kind, [a, b.build()], near_miss=near)


def accompany(rng: Rng, fps: float) -> Instance:
    return _side_by_side(rng, "accompany", (0.6, 1.2), False)  # v2 bound: 1.5 m



def wide_side_by_side(rng: Rng, fps: float) -> Instance:
    return _side_by_side(rng, "wide_side_by_side", (3.0, 3.6), True)


def _pass(rng: Rng, kind: str, lateral: tuple[float, float], near: bool) -> Instance:
    v1 = float(rng.uniform(1.0, 1.3))
    if rng.random() < 0.5:
        cls, v2 = "pedestrian", v1 + float(rng.uniform(0.8, 1.2))
    else:
        cls, v2 = "cyclist", float(rng.uniform(4.0, 5.0))
    lat = float(rng.uniform(*lateral))
    dur = 24.0 / (v2 - v1)
    passed = PathBuilder("pedestrian", -3 * v1, 0.0, t=-3.0, role="passed")
    passed.to(v1 * (dur + 3.0), 0.0, v1)
    passer = PathBuilder(cls, -12.0, lat, role="passer").to(v1 * dur + 12.0, lat, v2)
    return Instance(kind, [passed.build(), passer.build()], near_miss=near)


def overtake(rng: Rng, fps: float) -> Instance:
    return _pass(rng, "overtake", (2.3, 2.7), False)


def wide_pass(rng: Rng, fps: float) -> Instance:
    return _pass(rng, "wide_pass", (4.5, 5.5), True)


# --- pairs that come together ---------------------------------------------------------


def _depart(b: PathBuilder, angle_deg: float, v: float) -> None:
    d = unit(math.radians(angle_deg)) * 10.0
    b.move(float(d[0]), float(d[1]), v)


def meet(rng: Rng, fps: float) -> Instance:
    va, vb = _ped(rng), _ped(rng)
    half = float(rng.uniform(0.7, 0.8))
    early = float(rng.uniform(0.0, 3.0))
    stand = float(rng.uniform(5.0, 10.0))
    a = PathBuilder("pedestrian", -half, 0.0, t=0.0)
    a.prepend(-half - rng.uniform(8, 12), 0.0, va)
    a.wait(early + stand)
    b = PathBuilder("pedestrian", half, 0.0, t=early)
    b.prepend(half + rng.uniform(8, 12), 0.0, vb)
    b.wait(stand)
    _depart(a, float(rng.uniform(110, 250)), va)
    _depart(b, float(rng.uniform(-70, 70)), vb)
    return Instance("meet", [a.build(), b.build()])


def handover(rng: Rng, fps: float) -> Instance:
    va, vb = _ped(rng), _ped(rng)
    half = float(rng.uniform(0.35, 0.45))
    stand = float(rng.uniform(1.0, 1.6))
    a = PathBuilder("pedestrian", -half, 0.0).prepend(-half - rng.uniform(8, 12), 0.0, va)
    b = PathBuilder("pedestrian", half, 0.0).prepend(half + rng.uniform(8, 12), 0.0, vb)
    a.wait(stand).move(0.0, 10.0, va)
    b.wait(stand).move(0.0, -10.0, vb)
    return Instance("handover", [a.build(), b.build()])


def crossing(rng: Rng, fps: float) -> Instance:
    va, vb = _ped(rng), _ped(rng)
    miss = float(rng.uniform(0.6, 1.2)) * (1 if rng.random() < 0.5 else -1)
    a = PathBuilder("pedestrian", 0.0, 0.0).prepend(-12.0, 0.0, va).move(12.0, 0.0, va)
    # b crosses the x axis at x = miss at the time a passes the origin.
    b = PathBuilder("pedestrian", miss, 0.0).prepend(miss, -12.0, vb).move(0.0, 12.0, vb)
    return Instance("crossing", [a.build(), b.build()], near_miss=True)


# --- reactions ----------------------------------------------------------------------


def _change(b: PathBuilder, rng: Rng, v: float, away: float) -> None:
    """Abrupt change: a sprint (speed +1.3..2 m/s) or a turn of 60..120 degrees."""
    if rng.random() < 0.5:
        sprint = float(rng.uniform(2.8, 3.5))
        b.move(sprint * 4.0, 0.0, sprint).move(v * 6.0, 0.0, v)
    else:
        ang = math.radians(float(rng.uniform(60, 120)) * away)
        speed = float(rng.uniform(1.2, 1.8))
        d = unit(ang) * speed * 8.0
        b.move(float(d[0]), float(d[1]), speed)


def startle(rng: Rng, fps: float) -> Instance:
    """A walker passes a trigger at 2-5 m and reacts after 0.3-1.2 s (frame aligned)."""
    v = _ped(rng)
    off = float(rng.uniform(2.0, 5.0)) * (1 if rng.random() < 0.5 else -1)
    x0 = float(rng.uniform(-3.0, 1.0))
    lat = max(_aligned(float(rng.uniform(0.3, 1.2)), fps), 0.3)
    b = PathBuilder("pedestrian", x0 + v * lat, off, t=lat)
    b.prepend(x0 - v * 10.0, off, v)
    _change(b, rng, v, 1.0 if off > 0 else -1.0)
    return Instance("startle", [b.build()], trigger=LocalTrigger(0.0, np.zeros(2), 8.0),
                    meta={"latency": lat})


def trigger_ignored(rng: Rng, fps: float) -> Instance:
    v = _ped(rng)
    off = float(rng.uniform(2.0, 5.0)) * (1 if rng.random() < 0.5 else -1)
    b = PathBuilder("pedestrian", -v * 10.0, off, t=-10.0).move(v * 20.0, 0.0, v)
    return Instance("trigger_ignored", [b.build()], trigger=LocalTrigger(0.0, np.zeros(2), 8.0),
                    near_miss=True)


def spontaneous_change(rng: Rng, fps: float) -> Instance:
    v = _ped(rng)
    b = PathBuilder("pedestrian", 0.0, 0.0).prepend(-v * 10.0, 0.0, v)
    _change(b, rng, v, 1.0)
    return Instance("spontaneous_change", [b.build()], near_miss=True)




# --- zones and routes (anchored) -----------------------------------------------------


def _chord(zone: ZoneConfig, theta: float) -> tuple[F64, float, float]:
    poly = as_array(zone.polygon)
    c = centroid(poly)
    return c, ray_exit_distance(c, -unit(theta), poly), ray_exit_distance(c, unit(theta), poly)


def pass_through(rng: Rng, zone: ZoneConfig, inside: tuple[float, float], kind: str) -> Instance:
    """Walk (or ride) straight through the zone centroid, inside for `inside` seconds."""
    theta = float(rng.uniform(0, 2 * math.pi))
    c, r_in, r_out = _chord(zone, theta)
    u = unit(theta)
    chord = r_in + r_out
    v = chord / float(rng.uniform(*inside))
    cls = "pedestrian" if v <= 2.2 else "cyclist"
    a, z = c - u * (r_in + 6.0), c + u * (r_out + 6.0)
    b = PathBuilder(cls, float(a[0]), float(a[1])).to(float(z[0]), float(z[1]), max(v, 0.6))
    return Instance(kind, [b.build()], anchored=True, touches=frozenset({zone.name}),
                    near_miss=kind == "short_stay")


def dwell(rng: Rng, zone: ZoneConfig) -> Instance:
    """Walk in, stand (also a stop) or wander slowly for >= 10 s inside, walk out."""
    poly = as_array(zone.polygon)
    theta = float(rng.uniform(0, 2 * math.pi))
    c, r_in, _ = _chord(zone, theta)
    v = _ped(rng)
    a = c - unit(theta) * (r_in + 8.0)
    b = PathBuilder("pedestrian", float(a[0]), float(a[1])).to(float(c[0]), float(c[1]), v)
    if rng.random() < 0.5:
        b.wait(float(rng.uniform(10.0, 16.0)))
    else:
        r_min = min(ray_exit_distance(c, unit(k * math.pi / 8), poly) for k in range(16))
        w = float(rng.uniform(0.5, 0.8))
        start = b.now
        while b.now - start < 10.0:
            p = c + unit(float(rng.uniform(0, 2 * math.pi))) * r_min * 0.45
            b.to(float(p[0]), float(p[1]), w)
        b.to(float(c[0]), float(c[1]), w)
    theta2 = theta + float(rng.uniform(math.pi / 3, 5 * math.pi / 3))
    r2 = ray_exit_distance(c, unit(theta2), poly)
    z = c + unit(theta2) * (r2 + 8.0)
    b.to(float(z[0]), float(z[1]), v)
    return Instance("dwell", [b.build()], anchored=True, touches=frozenset({zone.name}))


def zone_graze(rng: Rng, zone: ZoneConfig) -> Instance:
    """Walk parallel to a zone edge, 0.3 m outside it (convex zones)."""
    poly = as_array(zone.polygon)
    c = centroid(poly)
    lengths = np.hypot(*np.diff(np.vstack([poly, poly[:1]]), axis=0).T)
    i = int(rng.choice(np.flatnonzero(lengths >= 2.0)))
    p, q = poly[i], poly[(i + 1) % len(poly)]
    e = (q - p) / np.hypot(*(q - p))
    n = np.array([e[1], -e[0]])
    if (p - c) @ n < 0:
        n = -n
    a, z = p - e * 8.0 + n * 0.3, q + e * 8.0 + n * 0.3
    if rng.random() < 0.5:
        a, z = z, a
    b = PathBuilder("pedestrian", float(a[0]), float(a[1])).to(float(z[0]), float(z[1]), _ped(rng))
    script = b.build()
    return Instance("zone_graze", [script], anchored=True, touches=frozenset({zone.name}),
                    near_miss=True)


_CLASS_LIMIT = {"pedestrian": 2.0, "cyclist": 6.0, "vehicle": 12.0}
_CLASS_SPEED = {"pedestrian": (1.1, 1.5), "cyclist": (4.0, 5.0), "vehicle": (7.0, 9.0)}


def choose_route(rng: Rng, zone: ZoneConfig, routes: list[RouteConfig], pick: int) -> Instance:
    """Approach the branch zone, cross it, leave along route `pick`."""
    poly = as_array(zone.polygon)
    c = centroid(poly)
    route = routes[pick % len(routes)]
    line = as_array(route.polyline)
    others = [r for r in routes if r.name != route.name]
    if others:
        src = as_array(others[int(rng.integers(len(others)))].polyline)[::-1]
        d = src[-1] - src[-2]
        d = d / np.hypot(*d)
        approach = src + np.array([d[1], -d[0]]) * 4.0
    else:
        d0 = (line[1] - line[0]) / np.hypot(*(line[1] - line[0]))
        approach = np.vstack([c - d0 * (ray_exit_distance(c, -d0, poly) + 20.0)])
    pts = np.vstack([approach, c[None, :], line])
    length = float(np.hypot(*np.diff(pts, axis=0).T).sum())
    cls = str(rng.choice(["pedestrian", "cyclist", "vehicle"], p=[0.3, 0.3, 0.4])
              if length > 80 else rng.choice(["pedestrian", "cyclist"], p=[0.7, 0.3]))
    v = float(rng.uniform(*_CLASS_SPEED[cls]))
    seg = np.concatenate([np.linspace(a, b, max(2, int(np.hypot(*(b - a)) / 0.05)))
                          for a, b in itertools.pairwise(pts)])
    inside_len = float(points_in_polygon(seg, poly).mean()) * length
    if 5.5 <= inside_len / v <= 10.5:
        v = inside_len / 5.0 if inside_len / 5.0 <= _CLASS_LIMIT[cls] else inside_len / 11.0
    b = PathBuilder(cls, float(pts[0, 0]), float(pts[0, 1]))
    for p in pts[1:]:
        b.to(float(p[0]), float(p[1]), v)
    return Instance("choose_route", [b.build()], anchored=True, touches=frozenset({zone.name}),
                    meta={"route": route.name})
