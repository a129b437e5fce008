"""Generate the rule SQL of every event type of an ontology (one statement per type).

Each statement takes $1 project_id, $2 source_id, $3 p_from, $4 p_to, recomputes the
type over [p_from - lookback, p_to] and upserts closed candidates (see temporal.py for the
range contract). Statements are built from templates per rule kind; conditions come from
`predicates.Predicate` (parsed and allow-listed), thresholds are re-printed floats.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .ontology import EventType, Ontology
from .predicates import COLUMNS, parse_predicate
from .temporal import (
    closed,
    duration_s,
    evidence_aggs,
    evidence_object,
    islands,
    name,
    num,
    rule_score,
    secs,
    sequence,
    text_literal,
    upsert,
    window_cte,
)

# Seconds of history each kind recomputes before p_from (params.lookback_s overrides).
LOOKBACK_S = {
    "zone_transition": 900.0, "zone_stay": 900.0, "route_choice": 900.0,
    "track_state": 120.0, "pair_state": 120.0, "pair_sequence": 60.0, "encounter": 120.0,
    "reaction": 10.0,
}
CLOSE_MARGIN_S = 0.6  # an interval is closed once it ended this long before p_to
_KIN_COLS = ", ".join(f"k.{c}" for c in sorted(COLUMNS["kinematics"]))
_REL_COLS = ", ".join(f"r.{c}" for c in sorted(COLUMNS["relations"]))


@dataclass(frozen=True)
class CompiledRule:
    """The generated statement of one event type."""

    type: str
    kind: str
    position: int
    lookback_s: float
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def compile_ontology(onto: Ontology, ontology_id: int) -> list[CompiledRule]:
    """One CompiledRule per event type, in ontology order."""
    return [compile_type(onto, t, ontology_id, pos) for pos, t in enumerate(onto.types.values())]


def compile_type(onto: Ontology, et: EventType, ontology_id: int, position: int) -> CompiledRule:
    """The statement of one type."""
    lookback = float(et.params.get("lookback_s", LOOKBACK_S[et.kind]))
    ctx = _Ctx(onto, et, int(ontology_id))
    body = _KINDS[et.kind](ctx)
    sql = f"WITH {window_cte(lookback)},\n{body}"
    return CompiledRule(et.name, et.kind, position, lookback, sql)


class _Ctx:
    """Values every template needs, already checked or re-printed."""

    def __init__(self, onto: Ontology, et: EventType, ontology_id: int) -> None:
        self.et = et
        self.type = text_literal(et.name)
        self.rule = f"'{name(onto.name.replace('-', '_'))}.{name(et.name)}'"
        self.ontology_id = str(int(ontology_id))
        self.version = str(int(onto.version))
        self.p = et.params
        table = et.table or "kinematics"
        self.evidence = tuple(c for c in et.evidence if c in COLUMNS[table])
        self.recall = onto.recall_factor

    def at_least(self, dur: str, min_s: float) -> str:
        """The minimum-duration test: dur >= min, or >= recall_factor * min with a recall
        tier (the strict/recall split is then `tier`)."""
        low = min_s if self.recall is None else self.recall * min_s
        return f"{dur} >= {num(low)}"

    def tier(self, dur: str, min_s: float) -> str | None:
        """The tier of an interval that passed `at_least` (None: no recall tier)."""
        if self.recall is None:
            return None
        return f"CASE WHEN {dur} >= {num(min_s)} THEN 'strict' ELSE 'recall' END"

    def pred(self, field: str, alias: str = "b") -> str:
        return parse_predicate(self.et.predicates[field], self.et.table or "").sql(alias)

    def margin(self, field: str, alias: str = "b") -> str:
        return parse_predicate(self.et.predicates[field], self.et.table or "").margin_sql(alias)

    def f(self, key: str) -> float:
        return float(self.p[key])

    def select(self, actors: str, t0: str, t1: str, score: str, evidence: str,
               from_where: str, zone: str = "NULL", route: str = "NULL",
               trigger: str = "NULL", latency: str = "NULL", tier: str | None = None) -> str:
        tail = "" if tier is None else f", {tier}"
        return (f"SELECT $1, $2, {self.type}, {actors}, {zone}, {route}, {trigger}, "
                f"{latency}, {t0}, {t1}, {self.rule}, {self.ontology_id}, {self.version}, "
                f"{score}, {evidence}{tail}\n  {from_where}")

    def actors(self, first: str, second: str | None = None) -> str:
        roles = self.et.roles
        if second is None:
            return f"jsonb_build_object('{name(roles[0])}', {first})"
        return f"jsonb_build_object('{name(roles[0])}', {first}, '{name(roles[1])}', {second})"


def _kin_cte() -> str:
    return f"""kin AS (
  SELECT k.track_id, k.frame, k.ts, {_KIN_COLS}
  FROM features.kinematics k, win
  WHERE k.source_id = $2 AND k.ts >= win.lo AND k.ts <= win.hi
)"""


def _rel_cte(symmetric: bool) -> str:
    canon = ("\n    AND (length(r.track_id), r.track_id) < (length(r.other_id), r.other_id)"
             if symmetric else "")
    return f"""rel AS (
  SELECT r.track_id, r.other_id, r.frame, r.ts, {_REL_COLS},
         lag(r.ts) OVER (PARTITION BY r.track_id, r.other_id ORDER BY r.ts) AS prev_ts
  FROM features.relations r, win
  WHERE r.source_id = $2 AND r.ts >= win.lo AND r.ts <= win.hi{canon}
)"""


def _kin_evidence(c: _Ctx, t0: str, t1: str, track: str) -> tuple[str, str]:
    """A LATERAL join summarising kinematics evidence of `track` over [t0, t1]."""
    cols = c.evidence or ("speed",)
    join = (f"LEFT JOIN LATERAL (SELECT {evidence_aggs(cols)} FROM kin f "
            f"WHERE f.track_id = {track} AND f.ts BETWEEN {t0} AND {t1}) ev ON true")
    return join, ", ".join(f"'{name(col)}', ev.ev_{name(col)}" for col in cols)


# ----------------------------------------------------------------------- state kinds
def _state(c: _Ctx, src: str, keys: tuple[str, ...]) -> str:
    """"Holds for >= D with gaps <= eps" over CTE `src`, one candidate per interval.

    With a recall tier: intervals of >= recall_factor * D (shorter than D: tier recall),
    plus the intervals that a gap tolerance of eps / recall_factor forms (fragments of one
    event split by dropped or noisy rows, merged) where they differ from a strict interval
    (tier recall)."""
    hold = c.pred("hysteresis") if "hysteresis" in c.et.predicates else c.pred("condition")
    core, margin, aggs = c.pred("condition"), c.margin("condition"), evidence_aggs(c.evidence)
    cols = ", ".join(keys)
    isl = islands(src, cols, core, hold, margin, c.et.max_gap_s, aggs)
    dur, mind = duration_s("i.t0", "i.t1"), c.et.min_duration_s
    actors = c.actors(*(f"i.{k}" for k in keys))
    where = (f"{c.at_least(dur, mind)} AND {closed('i.h0', 'i.h1', CLOSE_MARGIN_S)}")
    if c.recall is None:
        sel = c.select(actors, "i.t0", "i.t1", rule_score("i.margin", dur, mind),
                       evidence_object(c.evidence), f"FROM {src}_i i, win\n  WHERE {where}")
        return f"{isl},\n{upsert(sel)}"
    merged = f"{src}_m"
    same = " AND ".join(f"s.{k} = i.{k}" for k in (*keys, "t0", "t1"))
    gap_m = c.et.max_gap_s / c.recall
    isl_m = islands(merged, cols, core, hold, margin, gap_m, aggs)
    # closed once it ended longer ago than the wider gap (rows that extend it come sooner)
    where_m = (f"{c.at_least(dur, mind)} AND "
               f"{closed('i.h0', 'i.h1', max(CLOSE_MARGIN_S, gap_m + 0.1))}")
    both = f"""{merged} AS (SELECT * FROM {src}),
{isl_m},
{src}_c AS (
  SELECT i.*, {c.tier(dur, mind)} AS tier FROM {src}_i i, win WHERE {where}
  UNION ALL
  SELECT i.*, 'recall' FROM {merged}_i i, win WHERE {where_m}
    AND NOT EXISTS (SELECT 1 FROM {src}_i s WHERE {same})
)"""
    sel_c = c.select(actors, "i.t0", "i.t1", rule_score("i.margin", dur, mind),
                     evidence_object(c.evidence), f"FROM {src}_c i", tier="i.tier")
    return f"{isl},\n{both},\n{upsert(sel_c, True)}"


def _track_state(c: _Ctx) -> str:
    return f"{_kin_cte()},\n{_state(c, 'kin', ('track_id',))}"


def _pair_state(c: _Ctx) -> str:
    return f"{_rel_cte(c.et.symmetric)},\n{_state(c, 'rel', ('track_id', 'other_id'))}"


def _pair_sequence(c: _Ctx) -> str:
    keys = "track_id, other_id"
    seq = sequence("rel", keys, c.pred("first"), c.pred("then"))
    during_f, margin_f = c.pred("during", "f"), c.margin("during", "f")
    aggs = evidence_aggs(c.evidence)
    chk = f"""chk AS (
  SELECT s.track_id, s.other_id, s.ti, s.tj,
         avg(CASE WHEN {during_f} THEN 1.0 ELSE 0.0 END) AS share,
         max(f.ts - f.prev_ts) FILTER (WHERE f.ts > s.ti) AS max_gap,
         avg({margin_f}) AS margin{', ' + aggs if aggs else ''}
  FROM rel_seq s
  JOIN rel f ON f.track_id = s.track_id AND f.other_id = s.other_id
            AND f.ts BETWEEN s.ti AND s.tj
  GROUP BY s.track_id, s.other_id, s.ti, s.tj
)"""
    dur = duration_s("i.ti", "i.tj")
    sel = c.select(c.actors("i.track_id", "i.other_id"), "i.ti", "i.tj",
                   rule_score("i.margin", "1.0", 0.0),
                   evidence_object(c.evidence, "'during_share', round(i.share::numeric, 3)"),
                   f"FROM chk i, win\n  WHERE i.share >= {num(c.f('min_during_share'))}"
                   f" AND coalesce(i.max_gap, interval '0') <= make_interval(secs => "
                   f"GREATEST({num(c.et.max_gap_s)}, 1.5 / win.fps))"
                   f" AND {dur} <= {num(c.f('within_s'))}"
                   f" AND {closed('i.ti', 'i.tj', CLOSE_MARGIN_S)}")
    return f"{_rel_cte(False)},\n{seq},\n{chk},\n{upsert(sel)}"


def _encounter(c: _Ctx) -> str:
    keys = "track_id, other_id"
    cond = c.pred("condition")
    isl = islands("rel", keys, cond, cond, c.margin("condition"), c.et.max_gap_s,
                  "avg(f.speed) AS mean_speed, avg(f.other_speed) AS mean_other_speed")
    far = num(c.f("far_m"))
    enc = f"""far AS (
  SELECT r.track_id, r.other_id, min(r.ts) AS first_far, max(r.ts) AS last_far
  FROM rel r WHERE r.distance > {far} GROUP BY r.track_id, r.other_id
),
enc AS MATERIALIZED (
  SELECT i.*, {duration_s('i.t0', 'i.t1')} AS dur,
         coalesce(f.first_far < i.t0, false) AS approach,
         coalesce(f.last_far > i.t1, false) AS part
  FROM rel_i i LEFT JOIN far f ON f.track_id = i.track_id AND f.other_id = i.other_id
)"""

    if "inner" not in c.et.predicates:
        conds = [c.at_least("e.dur", c.f("min_close_s"))] if "min_close_s" in c.p else []
        tier = c.tier("e.dur", c.f("min_close_s")) if "min_close_s" in c.p else None
        if "max_mean_speed" in c.p:
            conds += [f"e.mean_speed < {num(c.f('max_mean_speed'))}",
                      f"e.mean_other_speed < {num(c.f('max_mean_speed'))}"]
        aggs = evidence_aggs(c.evidence)
        evj = (f"LEFT JOIN LATERAL (SELECT {aggs} FROM rel f WHERE f.track_id = e.track_id "
               "AND f.other_id = e.other_id AND f.ts BETWEEN e.t0 AND e.t1) ev ON true")
        sel = c.select(c.actors("e.track_id", "e.other_id"), "e.t0", "e.t1",
                       rule_score("e.margin", "e.dur", c.f("min_close_s")
                                  if "min_close_s" in c.p else 0.0),
                       evidence_object(c.evidence).replace("ev_", "ev.ev_"),
                       f"FROM enc e {evj}, win\n  WHERE e.approach AND e.part"
                       f"{''.join(' AND ' + x for x in conds)}"
                       f" AND {closed('e.h0', 'e.h1', CLOSE_MARGIN_S)}", tier=tier)
        return f"{_rel_cte(True)},\n{isl},\n{enc},\n{upsert(sel, tier is not None)}"
    inner = f"""short AS MATERIALIZED (
  SELECT e.track_id, e.other_id, e.t0, e.t1 FROM enc e
  WHERE e.approach AND e.part AND e.dur < {num(c.f('max_close_s'))}
),
inn AS (
  SELECT r.*, e.t0 AS close_t0
  FROM short e JOIN rel r ON r.track_id = e.track_id AND r.other_id = e.other_id
                         AND r.ts BETWEEN e.t0 AND e.t1
)"""
    ikeys = "track_id, other_id, close_t0"
    iisl = islands("inn", ikeys, c.pred("inner"), c.pred("inner"), c.margin("inner"),
                   c.et.max_gap_s, evidence_aggs(c.evidence))
    dur = duration_s("i.t0", "i.t1")
    min_inner = c.f("min_inner_s")
    low = min_inner if c.recall is None else c.recall * min_inner
    tier = c.tier(dur, min_inner)
    sel = c.select(c.actors("i.track_id", "i.other_id"), "i.t0", "i.t1",
                   rule_score("i.margin", dur, min_inner),
                   evidence_object(c.evidence),
                   f"FROM inn_i i, win\n  WHERE {dur} BETWEEN {num(low)} AND "
                   f"{num(c.f('max_inner_s'))} AND {closed('i.t0', 'i.t1', CLOSE_MARGIN_S)}",
                   tier=tier)
    return (f"{_rel_cte(True)},\n{isl},\n{enc},\n{inner},\n{iisl},\n"
            f"{upsert(sel, tier is not None)}")


# ----------------------------------------------------------------------- zone kinds
def _zone_runs(c: _Ctx, kinds: str) -> str:
    """CTEs zp → runs → lng (debounced long runs) → chg (state changes at c = t0).

    Inside flags use the raw points: smoothing would cut corners near zone edges."""
    deb = num(c.f("debounce_s"))
    return f"""{_kin_cte()},
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
  WHERE r.run = 1 OR {duration_s('r.t0', 'r.t1')} >= {deb} - 0.5 / win.fps
  WINDOW w AS (PARTITION BY r.track_id, r.zone_id ORDER BY r.run)
),
chg AS (
  SELECT l.*, {duration_s('l.t0', 'l.t1')} AS run_s FROM lng l
  WHERE l.prev_state IS NOT NULL AND l.inside <> l.prev_state
)"""


def _zone_transition(c: _Ctx) -> str:
    inside = "l.inside" if c.p["direction"] == "in" else "NOT l.inside"
    hw = c.f("half_width_s")
    t0, t1 = f"l.t0 - {secs(hw)}", f"l.t0 + {secs(hw)}"
    join, ev = _kin_evidence(c, t0, t1, "l.track_id")
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


def _zone_stay(c: _Ctx) -> str:
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
    join, ev = _kin_evidence(c, "s.t0", "s.t1", "s.track_id")
    tier = c.tier(dur, c.et.min_duration_s)
    sel = c.select(c.actors("s.track_id"), "s.t0", "s.t1",
                   rule_score("1.0", dur, c.et.min_duration_s),
                   f"jsonb_build_object('stay_s', round(({dur})::numeric, 2), {ev})",
                   f"FROM stay s {join}, win\n  WHERE {c.at_least(dur, c.et.min_duration_s)} "
                   f"AND {closed('s.t0', 's.t1', CLOSE_MARGIN_S)}", zone="s.zone", tier=tier)
    return f"{_zone_runs(c, _zone_kinds())},\n{stays},\n{upsert(sel, tier is not None)}"


def _route_choice(c: _Ctx) -> str:
    hz, tol = c.f("horizon_s"), c.f("tolerance_m")
    fit = f"""ex AS (SELECT l.track_id, l.zone, l.t0 AS c FROM chg l WHERE NOT l.inside),
fit AS (
  SELECT e.track_id, e.zone, e.c, rt.name AS route,
         max(point(k.x, k.y) <-> rt.path) AS maxd
  FROM ex e
  JOIN ingest.routes rt ON rt.source_id = $2 AND rt.from_zone = e.zone
  JOIN kin k ON k.track_id = e.track_id AND k.ts BETWEEN e.c AND e.c + {secs(hz)}
  WHERE EXISTS (SELECT 1 FROM kin k2, win WHERE k2.track_id = e.track_id
                AND k2.ts >= e.c + {secs(hz)} - make_interval(secs => 0.5 / win.fps))
  GROUP BY e.track_id, e.zone, e.c, rt.name
),
best AS (
  SELECT DISTINCT ON (f.track_id, f.zone, f.c) f.*
  FROM fit f WHERE f.maxd <= {num(tol)}
  ORDER BY f.track_id, f.zone, f.c, f.maxd
)"""
    t1 = f"b.c + {secs(hz)}"
    join, ev = _kin_evidence(c, "b.c", t1, "b.track_id")
    sel = c.select(c.actors("b.track_id"), "b.c", t1,
                   rule_score(f"({num(tol)} - b.maxd) / {num(tol)}", "1.0", 0.0),
                   f"jsonb_build_object('max_distance_m', round(b.maxd::numeric, 3), {ev})",
                   f"FROM best b {join}, win\n  WHERE {closed('b.c', t1, CLOSE_MARGIN_S)}",
                   zone="b.zone", route="b.route")
    return f"{_zone_runs(c, chr(39) + 'branch' + chr(39))},\n{fit},\n{upsert(sel)}"


# ----------------------------------------------------------------------- reaction
def _reaction(c: _Ctx) -> str:
    lat0, lat1, w_s = c.f("latency_min_s"), c.f("latency_max_s"), c.f("window_s")
    dv, turn = c.f("min_speed_change"), c.f("min_turn_deg")
    body = f"""trg AS (
  SELECT t.name, t.ts AS tt, t.position, t.radius,
         round(extract(epoch FROM t.ts - win.time_origin)::float8 * win.fps)::bigint AS ft,
         greatest(1, round({num(w_s)} * win.fps))::bigint AS w
  FROM ingest.triggers t, win
  WHERE t.source_id = $2 AND t.ts >= win.lo AND t.ts <= win.hi
),
pts AS (
  SELECT p.track_id, p.frame, p.ts, p.x, p.y
  FROM ingest.track_points p, win
  WHERE p.source_id = $2 AND p.ts >= win.lo - {secs(w_s + 1)} AND p.ts <= win.hi
),
act AS (
  SELECT DISTINCT ON (g.name, p.track_id) g.*, p.track_id
  FROM trg g JOIN pts p ON p.frame BETWEEN g.ft - 1 AND g.ft + 1
  WHERE g.position IS NULL OR (point(p.x, p.y) <-> g.position) <= g.radius
  ORDER BY g.name, p.track_id, abs(p.frame - g.ft)
),
vel AS (
  SELECT a.name, a.tt, a.ft, a.track_id, s.frame, s.ts, w.fps,
         (n.x - s.x) / {num(w_s)} AS ax, (n.y - s.y) / {num(w_s)} AS ay,
         (s.x - b.x) / {num(w_s)} AS bx, (s.y - b.y) / {num(w_s)} AS by
  FROM act a, win w
  JOIN pts s ON true
  JOIN pts n ON n.track_id = s.track_id
  JOIN pts b ON b.track_id = s.track_id
  WHERE s.track_id = a.track_id
    AND s.frame BETWEEN a.ft + ceil({num(lat0)} * w.fps - 1e-9)
                    AND a.ft + floor({num(lat1)} * w.fps + 1e-9)
    AND n.frame = s.frame + a.w AND b.frame = s.frame - a.w
),
mag AS (
  SELECT v.*, sqrt((v.ax - v.bx) ^ 2 + (v.ay - v.by) ^ 2) AS dv,
         abs(sqrt(v.ax ^ 2 + v.ay ^ 2) - sqrt(v.bx ^ 2 + v.by ^ 2)) AS dspeed,
         CASE WHEN sqrt(v.ax ^ 2 + v.ay ^ 2) > 0.2 AND sqrt(v.bx ^ 2 + v.by ^ 2) > 0.2
              THEN abs(features.wrap_deg(atan2d(v.ay, v.ax) - atan2d(v.by, v.bx)))
              ELSE 0.0 END AS turn,
         sqrt(v.bx ^ 2 + v.by ^ 2) AS speed_before, sqrt(v.ax ^ 2 + v.ay ^ 2) AS speed_after
  FROM vel v
),
onset AS (
  SELECT DISTINCT ON (m.name, m.track_id) m.*
  FROM mag m ORDER BY m.name, m.track_id, m.dv DESC, m.frame
)"""
    t1 = f"o.ts + {secs(c.f('duration_s'))}"
    margin = (f"GREATEST((o.dspeed - {num(dv)}) / {num(dv)}, "
              f"(o.turn - {num(turn)}) / {num(turn)})")
    sel = c.select(
        c.actors("o.track_id"), "o.ts", t1, rule_score(margin, "1.0", 0.0),
        "jsonb_build_object('speed_before', round(o.speed_before::numeric, 3), "
        "'speed_after', round(o.speed_after::numeric, 3), "
        "'turn_deg', round(o.turn::numeric, 1), 'dv', round(o.dv::numeric, 3))",
        f"FROM onset o, win\n  WHERE (o.dspeed >= {num(dv)} OR o.turn >= {num(turn)}) "
        f"AND {closed('o.ts', t1, CLOSE_MARGIN_S)}",
        trigger="o.name", latency="extract(epoch FROM o.ts - o.tt)::float8")
    return f"{body},\n{upsert(sel)}"


_KINDS = {
    "track_state": _track_state, "pair_state": _pair_state, "pair_sequence": _pair_sequence,
    "encounter": _encounter, "zone_transition": _zone_transition, "zone_stay": _zone_stay,
    "route_choice": _route_choice, "reaction": _reaction,
}
