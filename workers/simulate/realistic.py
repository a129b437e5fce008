"""Scenarios modelled on recorded scenes (ETH/UCY walking groups, MEVA conversations and
vehicles): how real people walk, stand and talk, rather than a planted event at a margin.

Free scenarios in local coordinates (moving along +x around the origin), as in
behaviours.py. `walking_group` and the walkers of a mingled crowd (mingled.py) walk
irregularly: speed that swells and ebbs, a path that bends, members who drift sideways and
fall behind for a few seconds.
"""

from __future__ import annotations

import math

import numpy as np

from .behaviours import Instance, Rng, _ped
from .geometry import F64, unit
from .motion import PathBuilder, Script

# Instances whose members an annotator lists as one group (config truth_style "group_labels").
GROUP_KINDS = frozenset({"accompany", "straggling_group", "standing_group", "walking_group"})
# Instances whose members an annotator labels as talking (truth_style "activity_labels").
TALK_KINDS = frozenset({"meet", "talk_group", "walk_talk", "conversation"})
KEY_DT = 0.2  # seconds between keyframes of irregular walks


def straggling_group(rng: Rng, fps: float) -> Instance:
    """Two people walking together, one of whom falls 1.4-1.8 m behind for 2-3.5 s
    and catches up (real groups do: ETH/UCY, docs/quality.md)."""
    v, lat = _ped(rng), float(rng.uniform(0.6, 1.2))
    first, lag_s = float(rng.uniform(10, 16)), float(rng.uniform(2.0, 3.5))
    lag = float(rng.uniform(1.4, 1.8))
    a = PathBuilder("pedestrian", 0.0, lat / 2).to(first + v * lag_s + 14.0, lat / 2, v).build()
    b = PathBuilder("pedestrian", 0.0, -lat / 2).to(first, -lat / 2, v)
    b.move(v * lag_s - lag, 0.0, v - lag / lag_s).move(lag, 0.0, v * 1.4)
    b.to(first + v * lag_s + 14.0, -lat / 2, v)
    return Instance("straggling_group", [a, b.build()])


def standing_group(rng: Rng, fps: float, approach: float = 10.0) -> Instance:
    """Two people who arrive together and stand side by side for 20-60 s (a group waiting:
    labelled as a group, but not walking); they come `approach` metres and leave 2 m more."""
    v, lat = _ped(rng), float(rng.uniform(0.6, 1.1))
    stand = float(rng.uniform(20.0, 60.0))
    a = PathBuilder("pedestrian", -approach, lat / 2).to(0.0, lat / 2, v).wait(stand)
    a.to(approach + 2.0, lat / 2, v)
    b = PathBuilder("pedestrian", -approach, -lat / 2).to(0.0, -lat / 2, v).wait(stand)
    b.to(approach + 2.0, -lat / 2, v)
    return Instance("standing_group", [a.build(), b.build()], meta={"stand": stand})


def strangers_abreast(rng: Rng, fps: float) -> Instance:
    """Two strangers whose paths join for 5-9 s side by side at 0.9-1.4 m in a crowd, then
    part: by the definitions an accompany (and a meet), never labelled as a group."""
    v, lat = _ped(rng), float(rng.uniform(0.9, 1.4))
    along = v * float(rng.uniform(5.5, 9.0))
    a = PathBuilder("pedestrian", 0.0, lat / 2).prepend(-8.0, 8.0, v)
    a.move(along, 0.0, v).move(8.0, 8.0, v)
    b = PathBuilder("pedestrian", 0.0, -lat / 2).prepend(-8.0, -8.0, v)
    b.move(along, 0.0, v).move(8.0, -8.0, v)
    return Instance("strangers_abreast", [a.build(), b.build()])


def talk_group(rng: Rng, fps: float) -> Instance:
    """Two to four people standing in a circle of 0.5-1.5 m radius, talking for 8-60 s,
    seen only while they talk (MEVA tracks a person while an activity lasts): the pairs
    across a wide circle stand more than 2 m apart."""
    n, r = int(rng.integers(2, 5)), float(rng.uniform(0.5, 1.5))
    stand, start = float(rng.uniform(8.0, 60.0)), float(rng.uniform(0.0, 2.0))
    phase = float(rng.uniform(0, 2 * math.pi))
    scripts = []
    for k in range(n):
        ang = phase + 2 * math.pi * k / n
        b = PathBuilder("pedestrian", r * math.cos(ang), r * math.sin(ang), t=start * (k % 2))
        scripts.append(b.wait(stand - start * (k % 2)).build())
    return Instance("talk_group", scripts)


def walk_talk(rng: Rng, fps: float) -> Instance:
    """Two people talking while they walk abreast at 0.6-1.0 m for 20-60 s, seen only then."""
    v, lat = float(rng.uniform(0.9, 1.4)), float(rng.uniform(0.6, 1.0))
    length = v * float(rng.uniform(20.0, 60.0))
    a = PathBuilder("pedestrian", 0.0, lat / 2).to(length, lat / 2, v).build()
    b = PathBuilder("pedestrian", 0.0, -lat / 2).to(length, -lat / 2, v).build()
    return Instance("walk_talk", [a, b])


# --- irregular walking (ETH/UCY) -------------------------------------------------------


def _centre_path(rng: Rng, v0: float, length: float) -> tuple[F64, F64, F64]:
    """Times, positions and unit headings of a walk along +x from -length/2 to length/2
    whose speed swells and ebbs by 4-12 % and whose path bends by up to 0.6 m."""
    amp, period, phase = rng.uniform(0.04, 0.12), rng.uniform(6.0, 15.0), rng.uniform(0, 2 * np.pi)
    bend, wave, shift = rng.uniform(0.0, 0.6), rng.uniform(20.0, 40.0), rng.uniform(0, 2 * np.pi)
    t = np.arange(0.0, length / (v0 * (1 - amp)) + KEY_DT, KEY_DT)
    v = v0 * (1 + amp * np.sin(2 * np.pi * t / period + phase))
    x = -length / 2 + np.concatenate([[0.0], np.cumsum(v[:-1] * KEY_DT)])
    keep = x <= length / 2 + 1e-9
    t, x = t[keep], x[keep]
    y = bend * np.sin(2 * np.pi * x / wave + shift)
    head = np.arctan2(np.gradient(y), np.gradient(x))
    return t, np.column_stack([x, y]), np.column_stack([np.cos(head), np.sin(head)])


def _lag(rng: Rng, t: F64, v0: float) -> F64:
    """Falling behind by 0.4-1.0 m for 1-4 s and catching up (speed change <= 0.4 m/s,
    never below 0.45 m/s)."""
    depth = float(rng.uniform(0.4, 1.0))
    ramp = max(float(rng.uniform(2.0, 4.0)), depth / min(0.4, v0 - 0.45))
    hold = float(rng.uniform(1.0, 4.0))
    t0 = float(rng.uniform(0.2, 0.7)) * float(t[-1])
    up = np.clip((t - t0) / ramp, 0.0, 1.0)
    down = np.clip((t0 + 2 * ramp + hold - t) / ramp, 0.0, 1.0)
    return depth * np.minimum(up, down)


def walking_group(rng: Rng, fps: float, length: float = 30.0, size: int | None = None,
                  speed: tuple[float, float] = (0.8, 1.5)) -> Instance:
    """2-4 people (2: 85 %, as in zara01/02) walking together at 0.8-1.5 m/s, 0.4-1.2 m
    apart (0.4-0.9 m between neighbours of a larger group), each drifting sideways by up to
    0.2 m; in half of the groups one member falls up to 1 m behind for a few seconds; in a
    third of the groups of three one walks behind the other two. A walker is a group of 1."""
    n = size if size is not None else int(rng.choice([2, 3, 4], p=[0.85, 0.12, 0.03]))
    v0 = float(rng.uniform(*speed))
    t, centre, head = _centre_path(rng, v0, length)
    normal = np.column_stack([-head[:, 1], head[:, 0]])
    gaps = rng.uniform(0.4, 1.2 if n == 2 else 0.9, max(n - 1, 0))
    lat = np.concatenate([[0.0], np.cumsum(gaps)])
    lat -= lat.mean()
    lon = rng.uniform(-0.15, 0.15, n) if n > 1 else np.zeros(1)
    if n == 3 and rng.random() < 0.35:
        lat = np.array([-gaps[0] / 2, 0.0, gaps[0] / 2])
        lon[1] = -float(rng.uniform(0.7, 1.1))
    lags = np.zeros((n, len(t)))
    if n > 1 and rng.random() < 0.5:
        lags[int(rng.integers(n))] = _lag(rng, t, v0)
    drift_max = min(0.2, 0.3 * float(gaps.min())) if n > 1 else 0.0
    scripts = []
    for i in range(n):
        drift = (rng.uniform(0.03, max(drift_max, 0.031)) * np.sin(
            2 * np.pi * t / rng.uniform(5.0, 12.0) + rng.uniform(0, 2 * np.pi))
            if n > 1 else np.zeros(len(t)))
        along = lon[i] - lags[i]
        across = lat[i] + drift
        xy = centre + head * along[:, None] + normal * across[:, None]
        scripts.append(Script("pedestrian", t.copy(), xy))
    kind = "walking_group" if n > 1 else "walker"
    return Instance(kind, scripts, meta={"t_mid": float(np.interp(0.0, centre[:, 0], t))})


# --- MEVA: conversations and vehicles ----------------------------------------------------


def _talk_length(rng: Rng) -> float:
    """Labelled MEVA conversations: about one in eight under 4 s (an exchange, a hand
    interaction), half 5-20 s, a third 20-130 s."""
    u = rng.random()
    if u < 0.12:
        return float(rng.uniform(1.5, 3.8))
    if u < 0.67:
        return float(rng.uniform(5.0, 20.0))
    return float(rng.uniform(20.0, 130.0))


def conversation(rng: Rng, fps: float) -> Instance:
    """Two to five people (sizes weighted as in the labelled clips) walk up from 6-10 m,
    stand in a circle 0.5-1.3 m apart from their neighbours and talk, some joining late
    or leaving early, then walk away. In one of six groups of three or more, one member
    stands 2.5-3.5 m out (still in the conversation). `meta["windows"]`: each member's
    time in the conversation (what MEVA labels and tracks)."""
    n = int(rng.choice([2, 3, 4, 5], p=[0.5, 0.2, 0.1, 0.2]))
    talk = _talk_length(rng)
    spacing = float(rng.uniform(0.5, 1.3))
    radius = spacing / 2 if n == 2 else spacing / (2 * math.sin(math.pi / n))
    radii = np.full(n, radius)
    if n >= 3 and rng.random() < 1 / 6:
        radii[int(rng.integers(n))] = float(rng.uniform(2.5, 3.5))
    phase = float(rng.uniform(0, 2 * math.pi))
    scripts, windows = [], []
    for k in range(n):
        start, end = 0.0, talk
        if k >= 2 and talk > 8.0 and rng.random() < 0.25:
            start = float(rng.uniform(0.1, 0.5)) * talk
        if k >= 1 and talk > 8.0 and rng.random() < 0.15:
            end = talk - float(rng.uniform(0.1, 0.4)) * talk
        ang = phase + 2 * math.pi * k / n
        slot = unit(ang) * radii[k]
        v = float(rng.uniform(1.0, 1.4))
        come = slot + unit(ang + float(rng.uniform(-0.7, 0.7))) * float(rng.uniform(6.0, 10.0))
        go = slot + unit(ang + float(rng.uniform(-1.2, 1.2))) * float(rng.uniform(6.0, 10.0))
        b = PathBuilder("pedestrian", float(slot[0]), float(slot[1]), t=start)
        b.prepend(float(come[0]), float(come[1]), v).wait(end - start)
        b.to(float(go[0]), float(go[1]), v)
        scripts.append(b.build())
        windows.append((start, end))
    return Instance("conversation", scripts, meta={"windows": windows})


def vehicle_stop(rng: Rng, fps: float) -> Instance:
    """A car drives in at 3-6 m/s, slows down over about 10 m, stands 3-25 s (a stop) and
    drives off."""
    v = float(rng.uniform(3.0, 6.0))
    b = PathBuilder("vehicle", -float(rng.uniform(20.0, 35.0)), 0.0)
    b.to(-6.5, 0.0, v).to(-2.5, 0.0, 0.6 * v).to(-0.5, 0.0, 0.3 * v).to(0.0, 0.0, 0.5)
    b.wait(float(rng.uniform(3.0, 25.0)))
    b.to(0.5, 0.0, 0.5).to(2.5, 0.0, 0.3 * v).to(6.5, 0.0, 0.6 * v)
    b.to(float(rng.uniform(20.0, 35.0)), 0.0, v)
    return Instance("vehicle_stop", [b.build()])
