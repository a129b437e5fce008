"""KRTD camera models (Kitware's text format) and the ground projection of image points.

A `.krtd` file holds, separated by blank lines: the 3x3 intrinsics K, the 3x3 rotation R,
the translation t (camera = R·world + t, pixel ~ K·camera) and one line of distortion
coefficients. A pixel (u, v) is projected onto the ground plane z = 0 by intersecting its
viewing ray with the plane; the distortion coefficients are read but not applied (MEVA's
own ground projections ignore them). An upright object's height comes from its box: the z
where the top-centre pixel's viewing ray passes closest to the vertical line through the
bottom-centre's ground point (people should come out about 1.7 m tall; see
docs/pipeline.md, "Warnings").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from workers.errors import UserError
from workers.ingest.files import read_text

ORTHONORMAL_TOL = 1e-4
"""How far R^T·R may be from the identity (the files carry 12 significant digits)."""


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: intrinsics K, world→camera rotation R and translation t."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    distortion: tuple[float, ...] = ()
    name: str = "camera"

    @property
    def centre(self) -> np.ndarray:
        """The camera centre in world coordinates, -R^T·t."""
        return np.asarray(-self.R.T @ self.t)

    @property
    def back_projection(self) -> np.ndarray:
        """R^T·K^-1: pixel [u, v, 1] → viewing-ray direction in world coordinates."""
        return np.asarray(self.R.T @ np.linalg.inv(self.K))

    def project(self, world: np.ndarray) -> np.ndarray:
        """World points (n, 3) → pixels (n, 2) (distortion not applied)."""
        cam = (self.R @ np.atleast_2d(world).T).T + self.t
        pix = (self.K @ cam.T).T
        return np.asarray(pix[:, :2] / pix[:, 2:3])

    def ground_points(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Pixels → (n, 2) points on z = 0; NaN where the ray misses the ground (at or
        above the horizon)."""
        frame = pl.DataFrame({"u": np.asarray(u, dtype=float), "v": np.asarray(v, dtype=float)})
        x, y = self.ground_exprs(pl.col("u"), pl.col("v"))
        out = frame.select(x.alias("x"), y.alias("y"))
        return out.to_numpy().astype(float)

    def ground_exprs(self, u: pl.Expr, v: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        """Polars expressions of the ground point (x, y) of pixel columns (u, v); null where
        the ray misses the ground in front of the camera."""
        m = self.back_projection
        c = self.centre
        ray = [u * float(m[i, 0]) + v * float(m[i, 1]) + float(m[i, 2]) for i in range(3)]
        lam = -float(c[2]) / ray[2]
        hit = (ray[2] != 0) & (lam > 0)
        x = pl.when(hit).then(float(c[0]) + lam * ray[0]).otherwise(None)
        y = pl.when(hit).then(float(c[1]) + lam * ray[1]).otherwise(None)
        return x, y

    def height_expr(self, u: pl.Expr, v_top: pl.Expr, v_bottom: pl.Expr) -> pl.Expr:
        """Polars expression of an upright object's height in world units from its box: the
        vertical line through the ground point of (u, v_bottom) and the viewing ray of
        (u, v_top) pass closest at some height z; that z. Null where the bottom misses the
        ground, the top's ray is vertical or the closest point lies behind the camera."""
        gx, gy = self.ground_exprs(u, v_bottom)
        m = self.back_projection
        c = self.centre
        d = [u * float(m[i, 0]) + v_top * float(m[i, 1]) + float(m[i, 2]) for i in range(3)]
        wx, wy = float(c[0]) - gx, float(c[1]) - gy
        horizontal = d[0] * d[0] + d[1] * d[1]
        # The ray's parameter where its horizontal projection passes closest to (gx, gy).
        along = -(d[0] * wx + d[1] * wy) / horizontal
        ok = gx.is_not_null() & (horizontal > 1e-12) & (along > 0)
        return pl.when(ok).then(float(c[2]) + along * d[2]).otherwise(None)

    def object_heights(self, u: np.ndarray, v_top: np.ndarray,
                       v_bottom: np.ndarray) -> np.ndarray:
        """Heights (see height_expr) of boxes with centre column u, top v_top and bottom
        v_bottom (pixels); NaN where undefined."""
        frame = pl.DataFrame({"u": np.asarray(u, dtype=float),
                              "top": np.asarray(v_top, dtype=float),
                              "bottom": np.asarray(v_bottom, dtype=float)})
        out = frame.select(self.height_expr(pl.col("u"), pl.col("top"), pl.col("bottom"))
                           .alias("h"))
        return out["h"].to_numpy().astype(float)


def parse_krtd(text: str, name: str = "camera.krtd") -> Camera:
    """Parse KRTD text; a UserError names the file and what is wrong."""
    rows: list[list[float]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rows.append([float(v) for v in line.split()])
        except ValueError as exc:
            raise UserError(f"{name}:{n}: not a number in {line.strip()!r}; a KRTD file is "
                            "K (3 rows), R (3 rows), t (1 row) and distortion (1 row) of "
                            "numbers") from exc
    shapes_ok = len(rows) >= 7 and all(len(r) == 3 for r in rows[:7])
    if not shapes_ok:
        raise UserError(f"{name}: expected K (3 rows of 3), R (3 rows of 3), t (3 numbers) "
                        f"and a distortion line; found rows of {[len(r) for r in rows]} "
                        "numbers. Is it a .krtd camera model?")
    K, R, t = np.array(rows[0:3]), np.array(rows[3:6]), np.array(rows[6])
    if not (np.isfinite(K).all() and np.isfinite(R).all() and np.isfinite(t).all()):
        raise UserError(f"{name}: K, R and t must be finite numbers")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or abs(K[2, 2] - 1) > 1e-9 or K[2, 0] or K[2, 1]:
        raise UserError(f"{name}: K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with "
                        f"positive focal lengths; got {K.tolist()}")
    if (np.abs(R.T @ R - np.eye(3)).max() > ORTHONORMAL_TOL
            or abs(float(np.linalg.det(R)) - 1) > ORTHONORMAL_TOL):
        raise UserError(f"{name}: R is not a rotation (R^T·R must be the identity, det 1); "
                        "check the file's row order (K, R, t, distortion)")
    distortion = tuple(rows[7]) if len(rows) > 7 else ()
    return Camera(K=K, R=R, t=t, distortion=distortion, name=name)


def read_krtd(path: Path) -> Camera:
    """Read a `.krtd` file (see parse_krtd)."""
    text = read_text(path, "the camera model", name=f"--camera {path}",
                     fix="give the clip's .krtd file")
    camera = parse_krtd(text, str(path))
    if camera.centre[2] <= 0:
        raise UserError(f"{path}: the camera centre is at z = {camera.centre[2]:.2f} m, not "
                        "above the ground plane z = 0; boxes cannot be projected")
    return camera


__all__ = ["Camera", "parse_krtd", "read_krtd"]
