"""Generate the rule SQL of every event type of an ontology (one statement per type).

Each statement takes $1 project_id, $2 source_id, $3 p_from, $4 p_to, recomputes the
type over [p_from - lookback, p_to] and upserts closed candidates (see temporal.py for the
range contract). Statements are built from templates per rule kind; conditions come from
`predicates.Predicate` (parsed and allow-listed), thresholds are re-printed floats. The
shared context is in context.py, the zone kinds in compile_zones.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .compile_zones import route_choice, zone_stay, zone_transition
from .context import CANONICAL_PAIR, CLOSE_MARGIN_S, Ctx, far_apart, kin_cte, rel_cte
from .ontology import EventType, Ontology
from .pair_bounds import boxes, boxes_sql
from .predicates import Predicate, parse_predicate
from .temporal import (
    closed,
    duration_s,
    evidence_aggs,
    evidence_object,
    islands,
    num,
    rule_score,
    secs,
    sequence,
    upsert,
    window_cte,
    window_start,
)


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
    lookback = et.lookback_s
    ctx = Ctx(onto, et, int(ontology_id))
    body = _KINDS[et.kind](ctx)
    sql = f"WITH {window_cte(lookback)},\n{body}"
    return CompiledRule(et.name, et.kind, position, lookback, sql)


# Kinds whose rules read pair rows (pg_temp.pair_rows).
PAIR_KINDS = frozenset({"pair_state", "pair_sequence", "encounter"})


def compile_pair_rows(onto: Ontology, ontology_id: int) -> str | None:
    """The candidates stage's fill statement (rules.ontologies.pair_rows_sql): the pair
    rows of [p_from - the widest pair lookback, p_to] where at least one pair rule can use
    the row (a state's or encounter's condition or hysteresis, a sequence's `during`; of a
    symmetric type, only in the one order its `rel` reads), into pg_temp.pair_rows. None
    when the ontology has no pair rule. Parameters as the rules' ($1 project, $2 source,
    $3 p_from, $4 p_to; it does not read the rules' $5, the sampling period)."""
    needs: list[str] = []
    lookback = 0.0
    for et in onto.types.values():
        if et.kind not in PAIR_KINDS:
            continue
        c = Ctx(onto, et, int(ontology_id))
        need = (c.strict_or_wide("r") if "condition" in _fill_fields(et)
                else c.pred("during", "r"))
        if et.symmetric:
            # its rel reads one order of each pair: the other is kept only for another rule
            need = f"({need}) AND {CANONICAL_PAIR}"
        if need not in needs:
            needs.append(need)
        lookback = max(lookback, et.lookback_s)
    if not needs:
        return None
    keep = "\n   OR ".join(f"({n})" for n in needs)
    # The pairs outside every box of these predicates are dropped inside the grid join.
    return f"""INSERT INTO pg_temp.pair_rows
SELECT r.*
FROM features.pair_rows_of($2, {window_start(lookback)}, $4::timestamptz, NULL,
                           {boxes_sql(boxes(pair_predicates(onto)))}) r
WHERE {keep}"""


def _fill_fields(et: EventType) -> tuple[str, ...]:
    """The predicates of a pair type whose rows the fill keeps: a sequence's `during`, a
    state's or encounter's condition, hysteresis and bridge."""
    return ("during",) if et.kind == "pair_sequence" else ("condition", "hysteresis", "bridge")


def pair_predicates(onto: Ontology) -> list[Predicate]:
    """The predicates that decide which pair rows the fill keeps (`_fill_fields`, and a
    `candidates.widen` entry's)."""
    found = [parse_predicate(et.predicates[f], et.table or "relations")
             for et in onto.types.values() if et.kind in PAIR_KINDS
             for f in _fill_fields(et) if f in et.predicates]
    for et in onto.types.values():
        if et.kind in PAIR_KINDS:
            found += [parse_predicate(text, et.table or "relations")
                      for text in (onto.widened(et.name) or {}).values()]
    return found


# ----------------------------------------------------------------------- state kinds
def _state(c: Ctx, src: str, keys: tuple[str, ...], by: str | None = None) -> str:
    """"Holds for >= D with gaps <= eps" over CTE `src`, one candidate per interval.

    With a recall tier: intervals of >= recall_factor * D (shorter than D: tier recall),
    plus the intervals that a gap tolerance of eps / recall_factor forms (fragments of one
    event split by dropped or noisy rows, merged) where they differ from a strict interval
    (tier recall). With `candidates.widen`: also the intervals of the looser predicates that
    no candidate of the same actors overlaps (tier recall; their margin is the strict
    condition's, so their rule_score says how near the strict rule they came)."""
    hold = c.hold()
    core, margin, aggs = c.pred("condition"), c.margin("condition"), evidence_aggs(c.evidence)
    cols = ", ".join(keys)
    bridge, bridge_s = c.bridge(), c.et.bridge_max_s
    # unseen spans (track states only; _track_state's kin_u has unseen_edge/unseen_from)
    unseen = c.et.unseen_max_s
    joined, evidence, seen = None, evidence_object(c.evidence), ""
    if unseen is not None:
        # the rows either side of an unseen span are held (and are core rows: the span is
        # the interval's); one that fails the condition counts on its threshold (margin 0)
        margin = f"CASE WHEN coalesce({core}, false) THEN {margin} ELSE 0.0 END"
        core, hold = _or_edge(core), _or_edge(hold)
        joined = "f.unseen_from = f.isl_prev"
        unseen_s = ("round(coalesce(sum(extract(epoch FROM f.ts - f.unseen_from)) FILTER "
                    "(WHERE f.unseen_from = f.isl_prev), 0)::numeric, 3) AS unseen_s")
        aggs = f"{aggs},\n         {unseen_s}" if aggs else unseen_s
        evidence = evidence_object(c.evidence, "'unseen_s', unseen_s")
        seen = f" AND {_seen_after(unseen)}"
    isl = islands(src, cols, core, hold, margin, c.et.max_gap_s, aggs, by, bridge, bridge_s,
                  joined)
    dur, mind = duration_s("i.t0", "i.t1"), c.et.min_duration_s
    actors = c.actors(*(f"i.{k}" for k in keys))
    where = (f"{c.at_least(dur, mind)} AND "
             f"{closed('i.h0', 'i.h1', CLOSE_MARGIN_S, at_end=True)}{seen}")
    wide = c.widened()
    if c.recall is None and wide is None:
        sel = c.select(actors, "i.t0", "i.t1", rule_score("i.margin", dur, mind),
                       evidence, f"FROM {src}_i i, win\n  WHERE {where}")
        return f"{isl},\n{upsert(sel)}"
    ctes = [isl]
    arms = [f"SELECT i.*, {c.tier(dur, mind) or repr('strict')} AS tier "
            f"FROM {src}_i i, win WHERE {where}"]
    if c.recall is not None:
        merged = f"{src}_m"
        same = " AND ".join(f"s.{k} = i.{k}" for k in (*keys, "t0", "t1"))
        gap_m = c.et.max_gap_s / c.recall
        # closed once it ended longer ago than the wider gap (rows that extend it come sooner)
        where_m = (f"{c.at_least(dur, mind)} AND "
                   f"{closed('i.h0', 'i.h1', max(CLOSE_MARGIN_S, gap_m + 0.1), True)}{seen}")
        ctes += [f"{merged} AS (SELECT * FROM {src})",
                 islands(merged, cols, core, hold, margin, gap_m, aggs, by, bridge, bridge_s,
                         joined)]
        arms.append(f"SELECT i.*, 'recall' FROM {merged}_i i, win WHERE {where_m}\n"
                    f"    AND NOT EXISTS (SELECT 1 FROM {src}_i s WHERE {same})")
    ctes.append(f"{src}_c AS (\n  " + "\n  UNION ALL\n  ".join(arms) + "\n)")
    final = f"{src}_c"
    if wide is not None:
        wide_core, wide_hold = wide.pred("condition"), wide.hold()
        if unseen is not None:
            wide_core, wide_hold = _or_edge(wide_core), _or_edge(wide_hold)
        ctes += [f"{src}_w AS (SELECT * FROM {src})",
                 islands(f"{src}_w", cols, wide_core, wide_hold, margin,
                         c.et.max_gap_s, aggs, by, bridge, bridge_s, joined),
                 f"""{src}_cw AS (
  SELECT * FROM {src}_c
  UNION ALL
  SELECT i.*, 'recall' FROM {src}_w_i i, win WHERE {where}
    AND {_unclaimed(c, "i", f"{src}_c", keys, actors)}
)"""]
        final = f"{src}_cw"
    sel_c = c.select(actors, "i.t0", "i.t1", rule_score("i.margin", dur, mind),
                     evidence, f"FROM {final} i", tier="i.tier")
    return ",\n".join(ctes) + f",\n{upsert(sel_c, True)}"


def _or_edge(pred: str) -> str:
    """`pred`, or the row is on either side of an unseen span (kin_u.unseen_edge)."""
    return f"({pred}) OR b.unseen_edge"


def _unclaimed(c: Ctx, i: str, cands: str, keys: tuple[str, ...], actors: str) -> str:
    """SQL: no interval of CTE `cands` with the same keys overlaps interval `i`, and no
    stored candidate of the type with the same actors overlaps it (other than one of the
    same span, which the upsert updates). A widened interval holds the strict ones inside
    it, which stay the event's candidates."""
    same = " AND ".join(f"s.{k} = {i}.{k}" for k in keys)
    return f"""NOT EXISTS (SELECT 1 FROM {cands} s
                    WHERE {same} AND s.t0 <= {i}.t1 AND s.t1 >= {i}.t0)
    AND NOT EXISTS (SELECT 1 FROM candidates.candidates x
                    WHERE x.project_id = $1 AND x.source_id = $2
                      AND x.ontology_id = {c.ontology_id} AND x.type = {c.type}
                      AND x.actors = {actors}
                      AND x.start_ts <= {i}.t1 AND x.end_ts >= {i}.t0
                      AND (x.start_ts, x.end_ts) <> ({i}.t0, {i}.t1))"""


def _track_state(c: Ctx) -> str:
    if c.et.unseen_max_s is None:
        return (f"{kin_cte(c.et.classes, c.strict_or_wide('k'))},\n"
                f"{_state(c, 'kin', ('track_id',))}")
    # An unseen span: the rows on either side of it are held, and the second goes on the
    # first's interval (docs/rules.md, "Unseen spans").
    edges = ("(k.track_id, k.ts) IN (SELECT u.track_id, u.ts0 FROM unseen u\n"
             "                            UNION ALL SELECT u.track_id, u.ts1 FROM unseen u)")
    kin = kin_cte(c.et.classes, f"({c.strict_or_wide('k')}) OR {edges}")
    return f"""{_unseen_cte(c.et.max_gap_s, c.et.unseen_max_s, c.et.unseen_shift_m)},
{kin},
kin_u AS (
  SELECT k.*, (a.ts0 IS NOT NULL OR b.ts1 IS NOT NULL) AS unseen_edge, b.ts0 AS unseen_from
  FROM kin k
  LEFT JOIN unseen a ON a.track_id = k.track_id AND a.ts0 = k.ts
  LEFT JOIN unseen b ON b.track_id = k.track_id AND b.ts1 = k.ts
),
{_state(c, 'kin_u', ('track_id',))}"""


def _seen_after(unseen_max_s: float) -> str:
    """SQL over interval i of a track state with unseen spans: the track is not lost at the
    interval's end. It was seen again after its last row (it went on), or that row is
    unseen_max_s old (it will not be joined any more), or the recording has ended. Until
    then a lost track may still be found where it was, so its interval stays open, as a
    bridged one does."""
    return (f"(win.data_ends OR i.h1 < win.hi - {secs(unseen_max_s)}\n"
            "       OR EXISTS (SELECT 1 FROM features.kinematics k2\n"
            "                  WHERE k2.source_id = $2 AND k2.track_id = i.track_id\n"
            "                    AND k2.ts > i.h1 AND k2.ts <= win.hi))")


def _unseen_cte(gap_s: float, unseen_max_s: float, shift_m: float) -> str:
    """CTE `unseen` (track_id, ts0, ts1): each time a track has no row for longer than the
    type's gap tolerance and at most unseen_max_s, and its row after the span (ts1) is
    within shift_m of its row before (ts0), both rows inside the window. A detector that
    loses a standing object and finds it again where it was: it stood there meanwhile. Only
    rows that start a kinematics segment (or follow a step longer than the tolerance) are
    probed, one index probe each for the track's previous row."""
    return f"""unseen AS MATERIALIZED (
  SELECT k.track_id, p.ts AS ts0, k.ts AS ts1
  FROM features.kinematics k
  CROSS JOIN win
  CROSS JOIN LATERAL (
    SELECT q.ts, q.x, q.y FROM features.kinematics q
    WHERE q.source_id = $2 AND q.track_id = k.track_id AND q.ts < k.ts AND q.ts >= win.lo
    ORDER BY q.ts DESC LIMIT 1
  ) p
  WHERE k.source_id = $2 AND k.ts >= win.lo AND k.ts <= win.hi
    AND (k.dt IS NULL OR k.dt > {num(gap_s)})
    AND k.ts - p.ts > make_interval(secs => GREATEST({num(gap_s)}, 1.5 * win.step_s))
    AND k.ts - p.ts <= {secs(unseen_max_s)}
    AND (k.x - p.x) ^ 2 + (k.y - p.y) ^ 2 <= {num(shift_m * shift_m)}
)"""


def _pair_state(c: Ctx) -> str:
    rel = rel_cte(c.et.symmetric, c.et.classes, c.strict_or_wide("r"))
    return f"{rel},\n{_state(c, 'rel', ('track_id', 'other_id'), 'pair_key')}"


def _pair_sequence(c: Ctx) -> str:
    """`first` then `then` over the pair's `during` rows (the only rows `rel` holds):
    consecutive during rows at most max_gap_s apart, and during rows covering at least
    min_during_share of the time from the first row to the then row (each row stands for one
    sampling period, so missed or non-during frames count against the share)."""
    keys = "track_id, other_id"
    seq = sequence("rel", keys, c.pred("first"), c.pred("then"), "pair_key")
    margin_f = c.margin("during", "f")
    aggs = evidence_aggs(c.evidence)
    chk = f"""chk AS (
  SELECT s.track_id, s.other_id, s.ti, s.tj,
         LEAST(1.0, count(*) * win.step_s
                    / ({duration_s('s.ti', 's.tj')} + win.step_s)) AS share,
         max(f.ts - f.prev_ts) FILTER (WHERE f.ts > s.ti) AS max_gap,
         avg({margin_f}) AS margin{', ' + aggs if aggs else ''}
  FROM rel_seq s
  JOIN rel f ON f.track_id = s.track_id AND f.other_id = s.other_id
            AND f.ts BETWEEN s.ti AND s.tj
  CROSS JOIN win
  GROUP BY s.track_id, s.other_id, s.ti, s.tj, win.step_s
)"""
    dur = duration_s("i.ti", "i.tj")
    sel = c.select(c.actors("i.track_id", "i.other_id"), "i.ti", "i.tj",
                   rule_score("i.margin", "1.0", 0.0),
                   evidence_object(c.evidence, "'during_share', round(i.share::numeric, 3)"),
                   f"FROM chk i, win\n  WHERE i.share >= {num(c.f('min_during_share'))}"
                   f" AND coalesce(i.max_gap, interval '0') <= make_interval(secs => "
                   f"GREATEST({num(c.et.max_gap_s)}, 1.5 * win.step_s))"
                   f" AND {dur} <= {num(c.f('within_s'))}"
                   f" AND {closed('i.ti', 'i.tj', CLOSE_MARGIN_S)}")
    rel = rel_cte(False, c.et.classes, c.pred("during", "r"), prev_ts=True)
    return f"{rel},\n{seq},\n{chk},\n{upsert(sel)}"


def _encounter(c: Ctx) -> str:
    keys = "track_id, other_id"
    cond = c.pred("condition")
    aggs = evidence_aggs(c.evidence)
    # With inner runs (a handover) the close runs only bound them: the evidence and the
    # mean speeds come from the inner rows, so the close runs' aggregates are not computed.
    outer_aggs = "" if "inner" in c.et.predicates else (
        "avg(f.speed) AS mean_speed, avg(f.other_speed) AS mean_other_speed"
        + (f",\n         {aggs}" if aggs else ""))
    isl = islands("rel", keys, cond, c.hold(), c.margin("condition"), c.et.max_gap_s,
                  outer_aggs, "pair_key")
    # `rel` holds only the rows where the condition (or its hysteresis) holds: the islands,
    # the evidence and a handover's inner runs are all made of them.
    rel = rel_cte(True, c.et.classes, c.strict_or_wide("r"))
    # Approach and part (a frame farther than far_m before and after the close run) only
    # where the type asks for them (handover), checked from kinematics on the few runs that
    # pass every other test; without far_m every close run counts.
    far = "far_m" in c.p
    enc = f"""enc AS MATERIALIZED (
  SELECT i.*, {duration_s('i.t0', 'i.t1')} AS dur FROM rel_i i
)"""

    if "inner" not in c.et.predicates:
        conds = [c.at_least("e.dur", c.f("min_close_s"))] if "min_close_s" in c.p else []
        if far:
            conds += [far_apart(c, "e.track_id", "e.other_id", before="e.t0"),
                      far_apart(c, "e.track_id", "e.other_id", after="e.t1")]
        tier = c.tier("e.dur", c.f("min_close_s")) if "min_close_s" in c.p else None
        if "max_mean_speed" in c.p:
            conds += [f"e.mean_speed < {num(c.f('max_mean_speed'))}",
                      f"e.mean_other_speed < {num(c.f('max_mean_speed'))}"]
        # Evidence: summaries over the interval's rows (computed with the islands).
        score = rule_score("e.margin", "e.dur", c.f("min_close_s")
                           if "min_close_s" in c.p else 0.0)
        evidence = evidence_object(c.evidence).replace("ev_", "e.ev_")
        kept = (f"{' AND '.join(conds) or 'true'} AND "
                f"{closed('e.h0', 'e.h1', CLOSE_MARGIN_S, at_end=not far)}")
        wide = c.widened()
        if wide is None:
            sel = c.select(c.actors("e.track_id", "e.other_id"), "e.t0", "e.t1", score,
                           evidence, f"FROM enc e, win\n  WHERE {kept}", tier=tier)
            return f"{rel},\n{isl},\n{enc},\n{upsert(sel, tier is not None)}"
        # The widened close runs (margin: the strict condition's) that overlap no candidate.
        keys_w = ("track_id", "other_id")
        isl_w = islands("rel_w", keys, wide.pred("condition"), wide.hold(),
                        c.margin("condition"), c.et.max_gap_s, outer_aggs, "pair_key")
        both = f"""enc_c AS (
  SELECT e.*, {tier or repr('strict')} AS tier FROM enc e, win WHERE {kept}
),
rel_w AS (SELECT * FROM rel),
{isl_w},
enc_w AS (
  SELECT e.*, 'recall' AS tier
  FROM (SELECT i.*, {duration_s('i.t0', 'i.t1')} AS dur FROM rel_w_i i) e, win
  WHERE {kept}
    AND {_unclaimed(c, "e", "enc_c", keys_w, c.actors("e.track_id", "e.other_id"))}
)"""
        sel = c.select(c.actors("e.track_id", "e.other_id"), "e.t0", "e.t1", score,
                       evidence, "FROM (SELECT * FROM enc_c UNION ALL SELECT * FROM enc_w) e",
                       tier="e.tier")
        return f"{rel},\n{isl},\n{enc},\n{both},\n{upsert(sel, True)}"
    inner = f"""short AS MATERIALIZED (
  SELECT e.track_id, e.other_id, e.t0, e.t1 FROM enc e
  WHERE e.dur < {num(c.f('max_close_s'))}
),
inn AS (
  SELECT r.*, e.t0 AS close_t0, e.t1 AS close_t1
  FROM short e JOIN rel r ON r.track_id = e.track_id AND r.other_id = e.other_id
                         AND r.ts BETWEEN e.t0 AND e.t1
)"""
    ikeys = "track_id, other_id, close_t0, close_t1"
    iisl = islands("inn", ikeys, c.pred("inner"), c.pred("inner"), c.margin("inner"),
                   c.et.max_gap_s, evidence_aggs(c.evidence), "pair_key, close_t0, close_t1")
    dur = duration_s("i.t0", "i.t1")
    min_inner = c.f("min_inner_s")
    low = min_inner if c.recall is None else c.recall * min_inner
    tier = c.tier(dur, min_inner)
    sel = c.select(c.actors("i.track_id", "i.other_id"), "i.t0", "i.t1",
                   rule_score("i.margin", dur, min_inner),
                   evidence_object(c.evidence),
                   f"FROM inn_i i, win\n  WHERE {dur} BETWEEN {num(low)} AND "
                   f"{num(c.f('max_inner_s'))} AND {closed('i.t0', 'i.t1', CLOSE_MARGIN_S)}"
                   + (f"\n    AND {far_apart(c, 'i.track_id', 'i.other_id', before='i.close_t0')}"
                      f"\n    AND {far_apart(c, 'i.track_id', 'i.other_id', after='i.close_t1')}"
                      if far else ""),
                   tier=tier)
    return f"{rel},\n{isl},\n{enc},\n{inner},\n{iisl},\n{upsert(sel, tier is not None)}"


def _reaction(c: Ctx) -> str:
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
    "encounter": _encounter, "zone_transition": zone_transition, "zone_stay": zone_stay,
    "route_choice": route_choice, "reaction": _reaction,
}
