"""Rule templates of the zone kinds: zone_transition (enter, exit), zone_stay (dwell) and
route_choice (choose_route), all over debounced inside/outside runs of raw points."""

from __future__ import annotations

from .context import CLOSE_MARGIN_S, Ctx, kin_cte, kin_evidence
from .temporal import closed, duration_s, num, rule_score, secs, upsert


def _zone_runs(c: Ctx, kinds: str) -> str:
    """CTEs zp → runs → lng (debounced long runs) → chg (state changes at c = t0).

    Inside flags use the raw points: smoothing would cut corners near zone edges."""
    deb = num(c.f("debounce_s"))
    return f"""{kin_cte()},
raw AS (
  SELECT p.track_id, p.frame, p.ts, p.x, p.y
  FROM ingest.track_points p, win
  WHERE p.source_id = $2 AND p.ts >= win.lo AND p.ts <= win.hi
),
zp AS (
  SELECT k.track_id, z.zone_id, z.name AS zone, k.ts, k.frame,
         (z.polygon @> point(k.x, k.y)) AS inside
  FROM raw k JOIN ingest.zones z ON z.source_id = $2 AND z.kind IN ({kinds})
),
zr AS (
  SELECT q.*, sum(q.brk) OVER (PARTITION BY q.track_id, q.zone_id ORDER BY q.ts
                               ROWS UNBOUNDED PRECEDING) AS run
  FROM (SELECT zp.*, CASE WHEN lag(zp.inside) OVER w IS DISTINCT FROM zp.inside
                          THEN 1 ELSE 0 END AS brk
        FROM zp WINDOW w AS (PARTITION BY zp.track_id, zp.zone_id ORDER BY zp.ts)) q
),
runs AS (
  SELECT track_id, zone_id, zone, run, bool_and(inside) AS inside, min(ts) AS t0,
         max(ts) AS t1
  FROM zr GROUP BY track_id, zone_id, zone, run
),
lng AS (
  SELECT r.*, lag(r.inside) OVER w AS prev_state
  FROM runs r, win
  WHERE r.run = 1 OR {duration_s('r.t0', 'r.t1')} >= {deb} - 0.5 * win.step_s
  WINDOW w AS (PARTITION BY r.track_id, r.zone_id ORDER BY r.run)
),
chg AS (
  SELECT l.*, {duration_s('l.t0', 'l.t1')} AS run_s FROM lng l
  WHERE l.prev_state IS NOT NULL AND l.inside <> l.prev_state
)"""


def zone_transition(c: Ctx) -> str:
    inside = "l.inside" if c.p["direction"] == "in" else "NOT l.inside"
    hw = c.f("half_width_s")
    t0, t1 = f"l.t0 - {secs(hw)}", f"l.t0 + {secs(hw)}"
    join, ev = kin_evidence(c, t0, t1, "l.track_id")
    sel = c.select(c.actors("l.track_id"), t0, t1,
                   rule_score("LEAST(1.0, l.run_s / " + num(2 * c.f("debounce_s")) + ")",
                              "l.run_s", c.f("debounce_s")),
                   f"jsonb_build_object('run_s', round(l.run_s::numeric, 2), {ev})",
                   f"FROM chg l {join}, win\n  WHERE {inside} AND "
                   f"{closed(t0, 'l.t0 + ' + secs(c.f('debounce_s')), CLOSE_MARGIN_S)}",
                   zone="l.zone")
    return f"{_zone_runs(c, _zone_kinds())},\n{sel_cte(sel)}"


def _zone_kinds() -> str:
    return "'zone', 'branch'"


def sel_cte(sel: str) -> str:
    """Wrap a SELECT of candidate rows into the upsert."""
    return upsert(sel)


def zone_stay(c: Ctx) -> str:
    stays = """st AS (
  SELECT l.*, lead(l.run) OVER w AS next_run
  FROM lng l WHERE l.run = 1 OR l.inside <> l.prev_state
  WINDOW w AS (PARTITION BY l.track_id, l.zone_id ORDER BY l.run)
),
last_run AS (
  SELECT r.track_id, r.zone_id, max(r.t1) AS t1 FROM runs r GROUP BY r.track_id, r.zone_id
),
stay AS (
  SELECT s.track_id, s.zone, s.t0, coalesce(r.t1, m.t1) AS t1
  FROM st s
  LEFT JOIN runs r ON r.track_id = s.track_id AND r.zone_id = s.zone_id
                  AND r.run = s.next_run - 1
  JOIN last_run m ON m.track_id = s.track_id AND m.zone_id = s.zone_id
  WHERE s.inside
)"""
    dur = duration_s("s.t0", "s.t1")
    join, ev = kin_evidence(c, "s.t0", "s.t1", "s.track_id")
    tier = c.tier(dur, c.et.min_duration_s)
    sel = c.select(c.actors("s.track_id"), "s.t0", "s.t1",
                   rule_score("1.0", dur, c.et.min_duration_s),
                   f"jsonb_build_object('stay_s', round(({dur})::numeric, 2), {ev})",
                   f"FROM stay s {join}, win\n  WHERE {c.at_least(dur, c.et.min_duration_s)} "
                   f"AND {closed('s.t0', 's.t1', CLOSE_MARGIN_S, at_end=True)}", zone="s.zone",
                   tier=tier)
    return f"{_zone_runs(c, _zone_kinds())},\n{stays},\n{upsert(sel, tier is not None)}"


def route_choice(c: Ctx) -> str:
    hz, tol = c.f("horizon_s"), c.f("tolerance_m")
    fit = f"""ex AS (SELECT l.track_id, l.zone, l.t0 AS c FROM chg l WHERE NOT l.inside),
fit AS (
  SELECT e.track_id, e.zone, e.c, rt.name AS route,
         max(point(k.x, k.y) <-> rt.path) AS maxd
  FROM ex e
  JOIN ingest.routes rt ON rt.source_id = $2 AND rt.from_zone = e.zone
  JOIN kin k ON k.track_id = e.track_id AND k.ts BETWEEN e.c AND e.c + {secs(hz)}
  WHERE EXISTS (SELECT 1 FROM kin k2, win WHERE k2.track_id = e.track_id
                AND k2.ts >= e.c + {secs(hz)} - make_interval(secs => 0.5 * win.step_s))
  GROUP BY e.track_id, e.zone, e.c, rt.name
),
best AS (
  SELECT DISTINCT ON (f.track_id, f.zone, f.c) f.*
  FROM fit f WHERE f.maxd <= {num(tol)}
  ORDER BY f.track_id, f.zone, f.c, f.maxd
)"""
    t1 = f"b.c + {secs(hz)}"
    join, ev = kin_evidence(c, "b.c", t1, "b.track_id")
    sel = c.select(c.actors("b.track_id"), "b.c", t1,
                   rule_score(f"({num(tol)} - b.maxd) / {num(tol)}", "1.0", 0.0),
                   f"jsonb_build_object('max_distance_m', round(b.maxd::numeric, 3), {ev})",
                   f"FROM best b {join}, win\n  WHERE {closed('b.c', t1, CLOSE_MARGIN_S)}",
                   zone="b.zone", route="b.route")
    return f"{_zone_runs(c, chr(39) + 'branch' + chr(39))},\n{fit},\n{upsert(sel)}"


# ----------------------------------------------------------------------- reaction
