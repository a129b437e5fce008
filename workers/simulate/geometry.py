"""Planar geometry on numpy arrays: polygons, polylines, rotations."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


def as_array(points: Sequence[Sequence[float]]) -> F64:
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def points_in_polygon(xy: F64, polygon: F64) -> NDArray[np.bool_]:
    """Even-odd rule, vectorised over points (boundary points are ill-defined)."""
    x, y = xy[:, 0], xy[:, 1]
    inside = np.zeros(len(xy), dtype=bool)
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        xint = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < xint)
    return inside


def distance_to_segments(xy: F64, line: F64, closed: bool = False) -> F64:
    """Distance from each point to a polyline (or a polygon boundary if closed)."""
    pts = np.vstack([line, line[:1]]) if closed else line
    best = np.full(len(xy), np.inf)
    for a, b in itertools.pairwise(pts):
        ab = b - a
        denom = float(ab @ ab)
        if denom == 0.0:
            d = np.hypot(xy[:, 0] - a[0], xy[:, 1] - a[1])
        else:
            u = np.clip(((xy - a) @ ab) / denom, 0.0, 1.0)
            proj = a + u[:, None] * ab
            d = np.hypot(xy[:, 0] - proj[:, 0], xy[:, 1] - proj[:, 1])
        best = np.minimum(best, d)
    return best


def centroid(polygon: F64) -> F64:
    """Area centroid of a simple polygon."""
    x, y = polygon[:, 0], polygon[:, 1]
    xs, ys = np.roll(x, -1), np.roll(y, -1)
    cross = x * ys - xs * y
    area = cross.sum() / 2.0
    cx = ((x + xs) * cross).sum() / (6.0 * area)
    cy = ((y + ys) * cross).sum() / (6.0 * area)
    return np.array([cx, cy])


def ray_exit_distance(origin: F64, direction: F64, polygon: F64) -> float:
    """Largest distance along a ray from origin at which it crosses the polygon boundary."""
    best = 0.0
    n = len(polygon)
    for i in range(n):
        a, b = polygon[i], polygon[(i + 1) % n]
        e = b - a
        m = np.array([[direction[0], -e[0]], [direction[1], -e[1]]])
        det = np.linalg.det(m)
        if abs(det) < 1e-12:
            continue
        s, u = np.linalg.solve(m, a - origin)
        if s > 0 and 0.0 <= u <= 1.0:
            best = max(best, float(s))
    return best


def rotation(theta: float) -> F64:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def unit(theta: float) -> F64:
    return np.array([np.cos(theta), np.sin(theta)])


def polyline_length(line: F64) -> float:
    return float(np.hypot(*np.diff(line, axis=0).T).sum())


def bbox_distance(xy: F64, box: tuple[tuple[float, float], tuple[float, float]]) -> F64:
    """Distance from points to an axis-aligned rectangle (0 inside)."""
    (x0, y0), (x1, y1) = box
    dx = np.maximum(np.maximum(x0 - xy[:, 0], 0.0), xy[:, 0] - x1)
    dy = np.maximum(np.maximum(y0 - xy[:, 1], 0.0), xy[:, 1] - y1)
    return np.hypot(dx, dy)
