"""Truth agrees with docs/events.md, checked by an independent brute-force detector."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl
import pytest

from workers.simulate import preset_config, simulate

QUIET = {"jitter": 0.0, "drop_rate": 0.0, "id_switch_rate": 0.0, "false_tracks": 0,
         "fps_jitter": 0.0, "scale": 1.0, "clip_to_events": [], "break_rate": 0.0,
         "untracked_stops": []}
# The type a truth style writes as annotators do (checked in test_simulate_realistic.py).
LABELLED = {"group_labels": "accompany", "activity_labels": "meet"}
TOL = 1e-6


# --- independent reference implementation (plain Python where it matters) ---------------


def inside(px: float, py: float, poly: list[list[float]]) -> bool:
    """Winding number test."""
    wn = 0
    n = len(poly)
    for i in range(n):
        (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % n]
        cross = (x2 - x1) * (py - y1) - (px - x1) * (y2 - y1)
        if y1 <= py < y2 and cross > 0:
            wn += 1
        elif y2 <= py < y1 and cross < 0:
            wn -= 1
    return wn != 0


def seg_dist(p: np.ndarray, line: list[list[float]]) -> float:
    best = math.inf
    for a, b in pairwise(line):
        a_, b_ = np.array(a, float), np.array(b, float)
        ab = b_ - a_
        u = min(1.0, max(0.0, float((p - a_) @ ab / (ab @ ab))))
        best = min(best, float(np.linalg.norm(p - (a_ + u * ab))))
    return best


class T:
    def __init__(self, tid: str, frames: np.ndarray, xy: np.ndarray, fps: float) -> None:
        self.id, self.f, self.xy, self.fps = tid, frames, xy, fps
        self.t = frames / fps
        n = len(frames)
        v = np.zeros((n, 2))
        for k in range(n):
            a, b = max(k - 1, 0), min(k + 1, n - 1)
            v[k] = (xy[b] - xy[a]) / (self.t[b] - self.t[a])
        self.v = v
        self.s = np.linalg.norm(v, axis=1)

    def at(self, frame: int) -> int:
        return int(frame - self.f[0])


def ev(kind: str, actors: dict[str, str], s: float, e: float, **attrs: Any) -> tuple:
    return (kind, tuple(sorted(actors.items())), round(s, 4), round(e, 4),
            tuple(sorted((k, round(v, 4) if isinstance(v, float) else v)
                         for k, v in attrs.items())))


def single(tr: T, scene: dict) -> list[tuple]:
    out = []
    for z in scene["zones"]:
        flags = [inside(x, y, z["polygon"]) for x, y in tr.xy]
        state, k, n = flags[0], 0, len(flags)
        stay_first = 0 if state else None
        while k < n:
            j = k
            while j + 1 < n and flags[j + 1] == flags[k]:
                j += 1
            if flags[k] != state and (tr.f[j] - tr.f[k]) / tr.fps >= 1.0 - 1e-9:
                state = flags[k]
                c = tr.t[k]
                if state:
                    out.append(ev("enter", {"actor": tr.id}, c - 0.5, c + 0.5, zone=z["name"]))
                    stay_first = k
                else:
                    out.append(ev("exit", {"actor": tr.id}, c - 0.5, c + 0.5, zone=z["name"]))
                    if (tr.f[k - 1] - tr.f[stay_first]) / tr.fps >= 8.0 - 1e-9:
                        out.append(ev("dwell", {"actor": tr.id}, tr.t[stay_first], tr.t[k - 1],
                                      zone=z["name"]))
                    if z["kind"] == "branch" and tr.t[-1] >= c + 3.0 - 1e-9:
                        win = [i for i in range(n) if c - 1e-9 <= tr.t[i] <= c + 3.0 + 1e-9]
                        fits = []
                        for r in scene["routes"]:
                            if r["from_zone"] == z["name"]:
                                worst = max(seg_dist(tr.xy[i], r["polyline"]) for i in win)
                                if worst <= 1.5 + 1e-9:
                                    fits.append((worst, r["name"]))
                        if fits:
                            out.append(ev("choose_route", {"actor": tr.id}, c, c + 3.0,
                                          zone=z["name"], route=min(fits)[1]))
            k = j + 1
        if state and (tr.f[-1] - tr.f[stay_first]) / tr.fps >= 8.0 - 1e-9:
            out.append(ev("dwell", {"actor": tr.id}, tr.t[stay_first], tr.t[-1], zone=z["name"]))
    k, n = 0, len(tr.f)
    while k < n:
        if tr.s[k] < 0.2:
            j = k
            while j + 1 < n and tr.s[j + 1] < 0.2:
                j += 1
            if (tr.f[j] - tr.f[k]) / tr.fps >= 2.0 - 1e-9:
                out.append(ev("stop", {"actor": tr.id}, tr.t[k], tr.t[j]))
            k = j + 1
        else:
            k += 1
    return out


def startles(tr: T, scene: dict) -> list[tuple]:
    out = []
    w = round(tr.fps)
    for trig in scene["triggers"]:
        ft = round(trig["t"] * tr.fps)
        if not tr.f[0] <= ft <= tr.f[-1]:
            continue
        if np.linalg.norm(tr.xy[tr.at(ft)] - trig["position"]) > trig["radius"] + 1e-9:
            continue
        best = None
        for k in range(len(tr.f)):
            lat = tr.t[k] - trig["t"]
            if not (0.2 - 1e-9 <= lat <= 1.5 + 1e-9) or k - w < 0 or k + w >= len(tr.f):
                continue
            vp = (tr.xy[k + w] - tr.xy[k]) * tr.fps / w
            vm = (tr.xy[k] - tr.xy[k - w]) * tr.fps / w
            m = float(np.linalg.norm(vp - vm))
            if best is None or m > best[0] + 1e-9:
                best = (m, k, vp, vm)
        if best is None:
            continue
        _, k, vp, vm = best
        sp, sm = np.linalg.norm(vp), np.linalg.norm(vm)
        ang = 0.0
        if min(sp, sm) > 1e-9:
            ang = math.degrees(math.acos(max(-1.0, min(1.0, float(vp @ vm / (sp * sm))))))
        if abs(sp - sm) >= 1.0 - 1e-9 or ang >= 45.0 - 1e-9:
            s = tr.t[k]
            out.append(ev("startle", {"actor": tr.id}, s, s + 1.0, trigger=trig["name"],
                          latency=s - trig["t"]))
    return out


def hdiff(va: np.ndarray, vb: np.ndarray) -> float:
    d = abs(math.atan2(va[1], va[0]) - math.atan2(vb[1], vb[0])) % (2 * math.pi)
    return math.degrees(min(d, 2 * math.pi - d))


def intervals(flags: list[bool], frames: list[int], fps: float, gap: float,
              min_len: float) -> list[tuple[int, int]]:
    idx = [i for i, f in enumerate(flags) if f]
    out: list[list[int]] = []
    for i in idx:
        if out and (frames[i] - frames[out[-1][1]]) / fps <= gap + 1e-9:
            out[-1][1] = i
        else:
            out.append([i, i])
    return [(a, b) for a, b in out if (frames[b] - frames[a]) / fps >= min_len - 1e-9]


def pair(a: T, b: T, people: bool = True) -> list[tuple]:
    lo, hi = max(a.f[0], b.f[0]), min(a.f[-1], b.f[-1])
    if hi - lo < 1:
        return []
    frames = list(range(int(lo), int(hi) + 1))
    fps = a.fps
    out = []
    A = [a.at(f) for f in frames]
    B = [b.at(f) for f in frames]
    for (p, P), (q, Q) in (((a, A), (b, B)), ((b, B), (a, A))):
        fol, lons, ok = [], [], []
        for i, j in zip(P, Q, strict=True):
            h = p.v[i] / p.s[i] if p.s[i] > 1e-9 else np.zeros(2)
            d = q.xy[j] - p.xy[i]
            lon, lat = float(d @ h), float(h[0] * d[1] - h[1] * d[0])
            mv = p.s[i] > 0.5 and q.s[j] > 0.5
            hd = hdiff(p.v[i], q.v[j])
            fol.append(-8 <= lon <= -1.5 and abs(lat) < 1.0 and hd < 30 and mv)
            lons.append(lon)
            ok.append(abs(lat) < 3.0 and mv and q.s[j] > p.s[i] and hd < 45)
        for s, e in intervals(fol, frames, fps, 0.5, 5.0):
            out.append(ev("follow", {"leader": p.id, "follower": q.id}, frames[s] / fps,
                          frames[e] / fps))
        last_behind = None
        for k, lon in enumerate(lons):
            if lon <= -2:
                last_behind = k
            elif lon >= 2:
                if last_behind is not None and all(ok[last_behind:k + 1]):
                    out.append(ev("overtake", {"passer": q.id, "passed": p.id},
                                  frames[last_behind] / fps, frames[k] / fps))
                last_behind = None
    x, y = (a, b) if int(a.id) < int(b.id) else (b, a)
    sym = {"a": x.id, "b": y.id}
    acc, dist = [], []
    for i, j in zip(A, B, strict=True):
        ha = a.v[i] / a.s[i] if a.s[i] > 1e-9 else np.zeros(2)
        hb = b.v[j] / b.s[j] if b.s[j] > 1e-9 else np.zeros(2)
        m = ha + hb
        d = b.xy[j] - a.xy[i]
        dist.append(float(np.linalg.norm(d)))
        if np.linalg.norm(m) < 1e-9:
            acc.append(False)
            continue
        m = m / np.linalg.norm(m)
        lon, lat = float(d @ m), float(m[0] * d[1] - m[1] * d[0])
        acc.append(abs(lon) < 1.0 and abs(lat) <= 1.5 and hdiff(a.v[i], b.v[j]) < 20
                   and a.s[i] > 0.5 and b.s[j] > 0.5)
    if not people:
        return out
    for s, e in intervals(acc, frames, fps, 2.0, 5.0):
        out.append(ev("accompany", sym, frames[s] / fps, frames[e] / fps))
    for s, e in intervals([d < 2.0 for d in dist], frames, fps, 5.0, 4.0):
        out.append(ev("meet", sym, frames[s] / fps, frames[e] / fps))
    for s, e in intervals([d < 2.0 for d in dist], frames, fps, 1.0 / fps, 0.0):
        if not (any(d > 3.0 for d in dist[:s]) and any(d > 3.0 for d in dist[e + 1:])):
            continue
        length = (frames[e] - frames[s]) / fps
        if length >= 4.0 - 1e-9:
            continue
        slow = [dist[k] < 1.2 and a.s[A[k]] < 0.5 and b.s[B[k]] < 0.5 for k in range(s, e + 1)]
        for hs, he in intervals(slow, frames[s:e + 1], fps, 1.0 / fps, 0.5):
            if (frames[s + he] - frames[s + hs]) / fps <= 3.0 + 1e-9:
                out.append(ev("handover", sym, frames[s + hs] / fps, frames[s + he] / fps))
    return out


def tracks_of(result: Any) -> dict[str, T]:
    df = result.clean.sort(["track_id", "frame"])
    out = {}
    for (tid,), g in df.group_by(["track_id"], maintain_order=True):
        out[str(tid)] = T(str(tid), g["frame"].to_numpy(), g.select("x", "y").to_numpy(),
                          result.config.fps)
    return out


def close_pairs(result: Any, radius: float) -> set[tuple[str, str]]:
    """Pairs that are ever within `radius` at a common frame (brute force per frame)."""
    df = result.clean.sort("frame")
    fr = df["frame"].to_numpy()
    ids = df["track_id"].to_numpy()
    xy = df.select("x", "y").to_numpy()
    cuts = np.flatnonzero(np.diff(fr)) + 1
    found: set[tuple[str, str]] = set()
    for sl_ids, sl_xy in zip(np.split(ids, cuts), np.split(xy, cuts), strict=True):
        if len(sl_ids) < 2:
            continue
        d = np.linalg.norm(sl_xy[:, None] - sl_xy[None, :], axis=2)
        ii, jj = np.nonzero(np.triu(d < radius, 1))
        found.update((str(sl_ids[i]), str(sl_ids[j])) for i, j in zip(ii, jj, strict=True))
    return found


def reference_truth(result: Any) -> set[tuple]:
    tracks = tracks_of(result)
    out: list[tuple] = []
    for tr in tracks.values():
        out += single(tr, result.scene) + startles(tr, result.scene)
    cls = {str(k): v for k, v in
           result.clean.group_by("track_id").agg(pl.col("class").first()).iter_rows()}
    for p, q in close_pairs(result, 10.0):
        out += pair(tracks[p], tracks[q], people=cls[p] == cls[q] == "pedestrian")
    return set(out)


def truth_set(truth: dict) -> set[tuple]:
    return {ev(e["type"], e["actors"], e["start"], e["end"], **e["attributes"])
            for e in truth["events"]}


CASES = [("plaza", 0, {}), ("plaza", 1, {}), ("corridor", 0, {}), ("intersection", 0, {}),
         ("crowd", 3, {"agents": 80, "duration": 200.0}),
         ("groups-real", 2, {"duration": 120.0}), ("meva-real", 2, {"duration": 150.0})]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def quiet_result(request: pytest.FixtureRequest) -> Any:
    name, seed, extra = request.param
    return simulate(preset_config(name, seed, noise=QUIET, **extra))


def test_truth_matches_independent_checker(quiet_result: Any) -> None:
    """Every labelled event satisfies its definition and nothing unlabelled does (in a
    mingled scene over every pair; the type a truth style labels as annotators do aside)."""
    skip = LABELLED.get(quiet_result.config.truth_style)
    truth = {e for e in truth_set(quiet_result.clean_truth) if e[0] != skip}
    ref = {e for e in reference_truth(quiet_result) if e[0] != skip}
    assert truth - ref == set(), "labelled but not satisfying the definition"
    assert ref - truth == set(), "satisfying a definition but unlabelled"


def test_groups_never_come_within_ten_metres(quiet_result: Any) -> None:
    """Scripted groups are isolated; background lanes keep > 3.5 m between agents."""
    if quiet_result.config.layout == "mingled":
        pytest.skip("a mingled crowd is not isolated (test_simulate_realistic.py)")
    group_of = {tid: g for g, members in enumerate(quiet_result.groups) for tid in members}
    near = close_pairs(quiet_result, 3.5)
    for p, q in close_pairs(quiet_result, 10.0):
        if p in group_of and q in group_of:
            assert group_of[p] == group_of[q], (p, q)
        else:
            assert p not in group_of and q not in group_of, (p, q)
            assert (p, q) not in near and (q, p) not in near, (p, q)


def test_quiet_file_equals_clean(quiet_result: Any) -> None:
    assert quiet_result.truth == quiet_result.clean_truth
    assert quiet_result.tracks.height == quiet_result.clean.height


def test_no_borderline_quantities(quiet_result: Any) -> None:
    """Planted values keep a margin from every threshold (noise must not flip them)."""
    if quiet_result.config.preset.endswith("-real"):
        pytest.skip("scenes measured on recorded data keep no margins, as recorded scenes")
    tracks = tracks_of(quiet_result)
    for e in quiet_result.clean_truth["events"]:
        length = e["end"] - e["start"]
        if e["type"] == "dwell":
            assert length >= 9.0, e
        if e["type"] in ("follow", "accompany"):
            assert length >= 6.0, e
        if e["type"] == "meet":
            assert length >= 4.5, e
        if e["type"] == "handover":
            assert 0.6 <= length <= 2.5, e
        if e["type"] == "startle":
            assert 0.25 <= e["attributes"]["latency"] <= 1.25, e
    # stays inside zones that are not dwells are clearly shorter than 8 s
    for tr in tracks.values():
        for z in quiet_result.scene["zones"]:
            flags = np.array([inside(x, y, z["polygon"]) for x, y in tr.xy])
            if not flags.any():
                continue
            d = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
            for s, e in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1, strict=True):
                stay = (tr.f[e] - tr.f[s]) / tr.fps
                assert not 6.0 < stay < 9.0, (tr.id, z["name"], stay)
                assert stay >= 1.5, (tr.id, z["name"], stay)


def test_handovers_stay_clear_of_meets(quiet_result: Any) -> None:
    """v2: every d < 2 run of >= 4 s is a meet; a planted handover's close run stays
    <= 3.5 s, so it is never a meet as well."""
    meets = {tuple(sorted(e["actors"].values())) for e in quiet_result.clean_truth["events"]
             if e["type"] == "meet"}
    tracks = tracks_of(quiet_result)
    for e in quiet_result.clean_truth["events"]:
        if e["type"] != "handover":
            continue
        a, b = (tracks[t] for t in (e["actors"]["a"], e["actors"]["b"]))
        assert tuple(sorted((a.id, b.id))) not in meets, e
        common = sorted(set(a.f.tolist()) & set(b.f.tolist()))
        close = [f for f in common
                 if np.linalg.norm(a.xy[a.at(f)] - b.xy[b.at(f)]) < 2.0]
        assert (close[-1] - close[0]) / a.fps <= 3.5, e
