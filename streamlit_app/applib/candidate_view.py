"""Candidate page logic (no Streamlit calls): the api.candidate_detail document as tables,
frame-snapped spans, positions at a time, and the scene and feature-curve charts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import altair as alt
import pandas as pd

DEFAULT_FPS = 10.0
TRACK_COLUMNS = ["role", "track_id", "actor", "t", "x", "y", "speed", "heading"]
CURVE_COLUMNS = ["t", "panel", "series", "value"]
# Feature curves: key → panel title ({u}: the source's length unit).
PANELS = {"speed": "speed ({u}/s)", "distance": "distance between actors ({u})",
          "heading_diff": "heading difference (deg)"}


def parse_ts(value: Any) -> datetime:
    """A timestamp from JSON (ISO 8601 text) or Python, always timezone-aware (UTC)."""
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def points_of(value: Any) -> list[tuple[float, float]]:
    """Vertices of a polygon or path given as [[x, y], …] (review.geometry_points)."""
    return [(float(p[0]), float(p[1])) for p in value or []]


# ---------------------------------------------------------------- the document
@dataclass(frozen=True)
class Detail:
    """api.candidate_detail, typed for the page. Times are seconds on the source's clock."""

    candidate: dict[str, Any]
    source: dict[str, Any]
    origin: datetime
    fps: float | None
    start_s: float
    end_s: float
    window: tuple[float, float]
    limits: tuple[float, float] | None
    """When all actors are tracked (an adjusted span must stay inside); None: never."""
    tracks: pd.DataFrame
    curves: pd.DataFrame
    zones: list[tuple[str, list[tuple[float, float]]]] = field(default_factory=list)
    routes: list[tuple[str, list[tuple[float, float]]]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    event: dict[str, Any] | None = None
    second_opinion: dict[str, Any] | None = None
    blind: bool = False

    @property
    def candidate_id(self) -> int:
        return int(self.candidate["candidate_id"])

    @property
    def video_uri(self) -> str | None:
        uri = self.source.get("video_uri")
        return str(uri) if uri else None

    @property
    def units(self) -> str:
        return str(self.source.get("units") or "m")


def _tracks(actors: Any) -> pd.DataFrame:
    """Rows (role, track_id, actor, t, x, y, speed, heading) from {role: {track_id, points}}."""
    records: list[dict[str, Any]] = []
    for role, actor in (actors or {}).items():
        track = str(actor.get("track_id"))
        for p in actor.get("points") or []:
            records.append({"role": str(role), "track_id": track, "actor": f"{role} {track}",
                            "t": float(p["t"]), "x": p.get("x"), "y": p.get("y"),
                            "speed": p.get("speed"), "heading": p.get("heading")})
    frame = pd.DataFrame.from_records(records, columns=TRACK_COLUMNS)
    return frame.sort_values(["role", "t"], ignore_index=True)


def _curves(tracks: pd.DataFrame, pairs: Any) -> pd.DataFrame:
    """Long table (t, panel, series, value): each actor's speed, and each pair's distance
    and heading difference."""
    records: list[dict[str, Any]] = []
    for row in tracks.dropna(subset=["speed"]).itertuples(index=False):
        records.append({"t": row.t, "panel": PANELS["speed"], "series": row.actor,
                        "value": float(row.speed)})
    for pair in pairs or []:
        name = f"{pair.get('a')} / {pair.get('b')}"
        for p in pair.get("points") or []:
            for key in ("distance", "heading_diff"):
                if p.get(key) is not None:
                    records.append({"t": float(p["t"]), "panel": PANELS[key],
                                    "series": name, "value": float(p[key])})
    return pd.DataFrame.from_records(records, columns=CURVE_COLUMNS)


def _seconds(section: Any) -> tuple[float, float] | None:
    if not isinstance(section, Mapping):
        return None
    lo, hi = section.get("from_s"), section.get("to_s")
    return (float(lo), float(hi)) if lo is not None and hi is not None else None


def parse_detail(doc: Mapping[str, Any]) -> Detail:
    """The document of api.candidate_detail as a Detail."""
    cand = dict(doc["candidate"])
    source = dict(doc.get("source") or {})
    start_s, end_s = float(cand["start_s"]), float(cand["end_s"])
    tracks = _tracks(doc.get("actors"))
    return Detail(
        candidate=cand, source=source, origin=parse_ts(source["time_origin"]),
        fps=float(source["fps"]) if source.get("fps") else None,
        start_s=start_s, end_s=end_s,
        window=_seconds(doc.get("window")) or (start_s, end_s),
        limits=_seconds(doc.get("span_limits")),
        tracks=tracks, curves=_curves(tracks, doc.get("pairs")),
        zones=[(str(z.get("name")), points_of(z.get("polygon")))
               for z in doc.get("zones") or []],
        routes=[(str(r.get("name")), points_of(r.get("path")))
                for r in doc.get("routes") or []],
        decisions=[dict(d) for d in doc.get("decisions") or []],
        event=dict(doc["event"]) if doc.get("event") else None,
        second_opinion=dict(doc["second_opinion"]) if doc.get("second_opinion") else None,
        blind=bool(doc.get("blind")),
    )


# ---------------------------------------------------------------- frames and spans
# Times on the page are seconds on the source's clock (0 = its time_origin, the video's
# clock too); frames fall at k / fps.
def frame_period(fps: float | None) -> float:
    return 1.0 / (fps if fps and fps > 0 else DEFAULT_FPS)


def snap(t: float, fps: float | None, how: Literal["nearest", "up", "down"] = "nearest"
         ) -> float:
    """The frame time nearest to t (or the first at/after it, or the last at/before it)."""
    rate = fps if fps and fps > 0 else DEFAULT_FPS
    k = round(t * rate, 6)  # 12.3 * 10 is 122.99999999999999: not a frame below 12.3
    n = round(k) if how == "nearest" else math.ceil(k) if how == "up" else math.floor(k)
    return round(n / rate, 6)


def at(origin: datetime, t: float) -> datetime:
    """The timestamp of clock time t (seconds since the origin), to the microsecond."""
    return origin + timedelta(microseconds=round(t * 1e6))


@dataclass(frozen=True)
class SpanControl:
    """What the span range control needs: its bounds, step and starting value (seconds)."""

    lo: float
    hi: float
    step: float
    value: tuple[float, float]

    @property
    def usable(self) -> bool:
        return self.hi > self.lo


def span_control(detail: Detail) -> SpanControl:
    """Bounds: the window, narrowed to when all actors are tracked (the database refuses an
    adjusted span outside that), snapped inwards to frames; the value: the proposed span
    snapped to frames and kept inside the bounds."""
    lo, hi = detail.window
    if detail.limits is not None:
        lo, hi = max(lo, detail.limits[0]), min(hi, detail.limits[1])
    lo, hi = snap(lo, detail.fps, "up"), snap(hi, detail.fps, "down")
    hi = max(hi, lo)
    start = min(max(snap(detail.start_s, detail.fps), lo), hi)
    end = min(max(snap(detail.end_s, detail.fps), start), hi)
    return SpanControl(lo, hi, frame_period(detail.fps), (start, end))


def chosen_span(picked: tuple[float, float], control: SpanControl,
                fps: float | None) -> tuple[float, float] | None:
    """The span picked on the control, snapped to frames; None when it is the proposed one."""
    a, b = sorted((snap(picked[0], fps), snap(picked[1], fps)))
    return None if (a, b) == control.value else (a, b)


# ---------------------------------------------------------------- positions and tables
def positions_at(tracks: pd.DataFrame, t: float, tolerance: float) -> pd.DataFrame:
    """Each actor's point nearest to clock time t, if one lies within `tolerance` seconds."""
    if tracks.empty:
        return tracks
    gap = (tracks["t"] - t).abs()
    near = tracks.assign(gap=gap)[gap <= tolerance]
    picked = near.sort_values("gap").groupby("role", sort=True).head(1)
    return picked.drop(columns="gap").sort_values("role", ignore_index=True)


def decisions_frame(decisions: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    cols = ["decided_at", "reviewer", "opinion", "kind", "reason", "start_ts", "end_ts",
            "live"]
    return pd.DataFrame.from_records([{c: d.get(c) for c in cols} for d in decisions],
                                     columns=cols)


def actors_label(actors: Any) -> str:
    if isinstance(actors, Mapping):
        return ", ".join(f"{role} {track}" for role, track in actors.items())
    return str(actors or "")


# ---------------------------------------------------------------- charts
def _outline(name: str, pts: list[tuple[float, float]], closed: bool) -> list[dict[str, Any]]:
    ring = [*pts, pts[0]] if closed and pts else pts
    return [{"name": name, "i": i, "x": x, "y": y} for i, (x, y) in enumerate(ring)]


def view_box(detail: Detail, margin: float = 0.25, least: float = 10.0
             ) -> tuple[tuple[float, float], tuple[float, float]]:
    """A square around the actors' trajectories and the candidate's zone (if it names one),
    with a margin, at least `least` units wide: the scene zoomed to what matters."""
    xs = list(detail.tracks["x"].dropna())
    ys = list(detail.tracks["y"].dropna())
    for name, pts in detail.zones:
        if name == detail.candidate.get("zone") or not xs:
            xs += [p[0] for p in pts]
            ys += [p[1] for p in pts]
    if not xs:
        xs, ys = [0.0, least], [0.0, least]
    half = max(max(xs) - min(xs), max(ys) - min(ys), least) * (0.5 + margin)
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    return (cx - half, cx + half), (cy - half, cy + half)


def scene_chart(detail: Detail, span: tuple[float, float], t: float) -> alt.LayerChart:
    """Zones (outlined), routes (dashed), each actor's trajectory over the window (the span
    drawn thick) and where each actor is at clock time t."""
    tracks = detail.tracks.assign(in_span=lambda f: f["t"].between(span[0], span[1]))
    zones = pd.DataFrame([p for n, pts in detail.zones for p in _outline(n, pts, True)],
                         columns=["name", "i", "x", "y"])
    routes = pd.DataFrame([p for n, pts in detail.routes for p in _outline(n, pts, False)],
                          columns=["name", "i", "x", "y"])
    (x0, x1), (y0, y1) = view_box(detail)
    x = alt.X("x:Q", scale=alt.Scale(domain=[x0, x1], nice=False), title=f"x ({detail.units})")
    y = alt.Y("y:Q", scale=alt.Scale(domain=[y0, y1], nice=False), title=f"y ({detail.units})")
    now = positions_at(tracks, t, frame_period(detail.fps) * 1.5)
    layers: list[alt.Chart] = [
        alt.Chart(zones).mark_line(color="#888", strokeWidth=1.5, clip=True)
        .encode(x=x, y=y, detail="name:N", order="i:Q", tooltip=["name"]),
        alt.Chart(zones.groupby("name", as_index=False).agg(x=("x", "mean"), y=("y", "mean")))
        .mark_text(color="#666", fontSize=11, clip=True).encode(x=x, y=y, text="name:N"),
        alt.Chart(routes).mark_line(color="#aaa", strokeDash=[6, 4], clip=True)
        .encode(x=x, y=y, detail="name:N", order="i:Q", tooltip=["name"]),
        alt.Chart(tracks).mark_line(strokeWidth=1, opacity=0.5)
        .encode(x=x, y=y, order="t:Q",
                color=alt.Color("actor:N", title="actor", scale=alt.Scale(scheme="category10"),
                                legend=alt.Legend(orient="bottom"))),
        alt.Chart(tracks[tracks["in_span"]]).mark_line(strokeWidth=3.5)
        .encode(x=x, y=y, color="actor:N", order="t:Q"),
        alt.Chart(now).mark_point(filled=True, size=160, stroke="black", strokeWidth=1)
        .encode(x=x, y=y, color="actor:N",
                tooltip=["actor", alt.Tooltip("t:Q", format=".2f"),
                         alt.Tooltip("speed:Q", format=".2f"),
                         alt.Tooltip("heading:Q", format=".0f")]),
    ]
    return alt.LayerChart(layer=layers).properties(width=420, height=420)


def curves_chart(detail: Detail, span: tuple[float, float], t: float) -> alt.VConcatChart:
    """One panel per feature (speed per actor, distance, heading difference) over the window,
    the span shaded and time t marked."""
    panels: list[alt.LayerChart] = []
    shade = pd.DataFrame({"start": [span[0]], "end": [span[1]]})
    mark = pd.DataFrame({"t": [t]})
    x_scale = alt.Scale(domain=list(detail.window), nice=False)
    for panel in PANELS.values():
        data = detail.curves[detail.curves["panel"] == panel]
        if data.empty:
            continue
        title = panel.format(u=detail.units)
        panels.append(alt.LayerChart(layer=[
            alt.Chart(shade).mark_rect(opacity=0.18, color="orange")
            .encode(x=alt.X("start:Q", scale=x_scale, title="seconds"), x2="end:Q"),
            alt.Chart(data).mark_line()
            .encode(x=alt.X("t:Q", scale=x_scale, title="seconds"),
                    y=alt.Y("value:Q", title=title),
                    color=alt.Color("series:N", title=None,
                                    scale=alt.Scale(scheme="category10"),
                                    legend=alt.Legend(orient="top")),
                    tooltip=["series", alt.Tooltip("t:Q", format=".2f"),
                             alt.Tooltip("value:Q", format=".2f")]),
            alt.Chart(mark).mark_rule(color="black", strokeDash=[2, 2]).encode(x="t:Q"),
        ]).properties(height=120, width=400))
    chart: alt.VConcatChart = alt.VConcatChart(vconcat=panels).resolve_scale(color="independent")
    return chart
