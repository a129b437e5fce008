"""Temporal composition in SQL: the building blocks every generated rule uses.

* `islands`: "holds for >= D with gaps <= eps" with hysteresis: rows where the looser
  `hold` predicate is true are joined into intervals when consecutive rows are at most
  max(eps, 1.5 sampling periods) apart; an interval counts only if it contains a row where
  the strict `core` predicate holds, and its span is trimmed to the first and last core row.
* `sequence`: "A then B within Delta": the last A row followed by the first B row with only
  neither-rows between, at most Delta later.
* the range contract of the candidates stage: recompute over [p_from - lookback, p_to] and
  emit only intervals that are *closed* (their end lies more than a margin before p_to, or
  the track ended) and that do not touch the recomputed window's start (unless the data
  starts there), so overlapping ticks upsert identical spans.

All values substituted here are numbers re-printed from floats or names checked against
NAME_RE; predicates arrive already rendered by `predicates.Predicate`.
"""

from __future__ import annotations

import math
import re

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def num(value: float) -> str:
    """A float as a SQL literal (finite values only)."""
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {value!r}")
    return f"{v!r}::float8"


def secs(value: float) -> str:
    """An interval literal of `value` seconds."""
    return f"make_interval(secs => {num(value)})"


def name(value: str) -> str:
    """A checked lower-case identifier."""
    if not NAME_RE.match(value):
        raise ValueError(f"bad name {value!r}")
    return value


def text_literal(value: str) -> str:
    """A checked name as a SQL string literal (names cannot hold quotes)."""
    return f"'{name(value)}'"


def window_start(lookback_s: float) -> str:
    """The recomputed range's start: $3 (p_from) less the lookback."""
    return f"greatest($3::timestamptz - {secs(lookback_s)}, '-infinity'::timestamptz)"


def window_cte(lookback_s: float) -> str:
    """The `win` CTE: the source, its fps and the recomputed range [lo, hi]."""
    return f"""win AS (
  SELECT s.project_id, s.source_id, s.time_origin,
         coalesce(s.fps, 10.0) AS fps,
         -- The sampling period (the median step between a track's points, not 1 / fps):
         -- $5, features.sampling_period_s once per range (candidates.run_rules).
         coalesce($5::float8, 1.0 / coalesce(s.fps, 10.0)) AS step_s,
         {window_start(lookback_s)} AS lo,
         $4::timestamptz AS hi,
         NOT EXISTS (SELECT 1 FROM features.kinematics k0
                     WHERE k0.source_id = s.source_id
                       AND k0.ts < $3::timestamptz - {secs(lookback_s)}) AS data_starts,
         -- the recording ended inside this range and no point came after its end
         -- (ingest.sources.ended_at, secinf ingest --ended); the points decide, as in
         -- pipeline.tick_plan, not what a stage derived from them so far
         (s.ended_at IS NOT NULL AND s.ended_at <= $4::timestamptz
          AND NOT EXISTS (SELECT 1 FROM ingest.track_points p1
                          WHERE p1.source_id = s.source_id AND p1.ts > s.ended_at))
           AS data_ends
  FROM ingest.sources s
  WHERE s.source_id = $2 AND s.project_id = $1
)"""


def islands(src: str, keys: str, core: str, hold: str, margin: str, gap_s: float,
            extra_aggs: str = "", by: str | None = None, bridge: str | None = None,
            bridge_max_s: float = 0.0, joined: str | None = None) -> str:
    """CTEs `<src>_f`, `<src>_g`, `<src>_i` over rows of CTE `src` (with ts, frame, keys).

    `<src>_i` has one row per interval: keys, t0/t1 (first/last core row), h0/h1 (first/last
    row, hysteresis and bridge included), mean margin over core rows, and `extra_aggs` (SQL
    aggregate list, may be '').
    `by` partitions instead of `keys` where one column identifies them (a pair row's
    pair_key: one bigint to sort and compare instead of two texts); the groups are the same.
    `bridge`: rows where it holds keep an interval open like hysteresis rows, but only for
    `bridge_max_s` after the last core or hysteresis row and never before the first one,
    so they join two intervals of the same keys and never make or extend a span (t0/t1).
    `joined`: SQL over alias f (a row with isl_prev, the previous row's ts): the row goes
    on the previous row's interval however long the step (an unseen span, docs/rules.md).
    """
    extra = f",\n         {extra_aggs}" if extra_aggs else ""
    keep = "" if joined is None else f" AND NOT coalesce({joined}, false)"
    part = by or keys
    group = f"{by}, {keys}" if by else keys
    if bridge is None:
        rows = f"""{src}_f AS (
  SELECT b.*, ({core}) AS core, ({margin}) AS margin
  FROM {src} b WHERE ({hold}) OR ({core})
),"""
    else:
        cols = ", ".join(f"b.{c.strip()}" for c in part.split(","))
        rows = f"""{src}_b AS (
  SELECT b.*, ({core}) AS core, ({margin}) AS margin, ({hold}) OR ({core}) AS held
  FROM {src} b
  WHERE ({hold}) OR ({core})
     -- bridge rows only of keys with a held row at all: most close pairs of a dense crowd
     -- never walk together, and their rows need not be sorted below
     OR (({bridge}) AND ({cols}) IN (SELECT {cols} FROM {src} b WHERE ({hold}) OR ({core})))
),
{src}_f AS (
  -- a bridge row counts only within bridge_max_s after a held row of the same keys
  SELECT f.* FROM (
    SELECT f.*, max(f.ts) FILTER (WHERE f.held)
                  OVER (PARTITION BY {part} ORDER BY f.ts ROWS UNBOUNDED PRECEDING) AS last_held
    FROM {src}_b f) f
  WHERE f.held OR f.ts - f.last_held <= {secs(bridge_max_s)}
),"""
    return f"""{rows}
{src}_g AS (
  -- the gap limit is one value per statement (an InitPlan), not a join with win per row
  SELECT f.*, sum(CASE WHEN f.isl_prev IS NULL OR (f.ts - f.isl_prev >
                            (SELECT make_interval(secs => GREATEST({num(gap_s)}, 1.5 * w.step_s))
                             FROM win w){keep})
                       THEN 1 ELSE 0 END)
                OVER (PARTITION BY {part} ORDER BY f.ts ROWS UNBOUNDED PRECEDING) AS run
  FROM (SELECT f.*, lag(f.ts) OVER (PARTITION BY {part} ORDER BY f.ts) AS isl_prev
        FROM {src}_f f) f
),
{src}_i AS (
  SELECT {keys}, run,
         min(ts) FILTER (WHERE core) AS t0, max(ts) FILTER (WHERE core) AS t1,
         min(ts) AS h0, max(ts) AS h1,
         avg(margin) FILTER (WHERE core) AS margin{extra}
  FROM {src}_g f
  GROUP BY {group}, run
  HAVING bool_or(core)
)"""


def sequence(src: str, keys: str, first: str, then: str, by: str | None = None) -> str:
    """CTE `<src>_seq`: (keys, ti, tj) for every first-row -> then-row transition.

    Rows of `src` are labelled 1 (first), 2 (then) or 0 (neither); a transition is a
    label-2 row whose previous labelled row has label 1 (any label-0 rows between). `by`
    as in islands().
    """
    return f"""{src}_lab AS (
  SELECT b.*, CASE WHEN ({first}) THEN 1 WHEN ({then}) THEN 2 ELSE 0 END AS lab
  FROM {src} b
),
{src}_nz AS (
  SELECT l.*, lag(l.lab) OVER w AS prev_lab, lag(l.ts) OVER w AS prev_lab_ts
  FROM {src}_lab l WHERE l.lab > 0
  WINDOW w AS (PARTITION BY {by or keys} ORDER BY l.ts)
),
{src}_seq AS (
  SELECT {keys}, n.prev_lab_ts AS ti, n.ts AS tj
  FROM {src}_nz n WHERE n.lab = 2 AND n.prev_lab = 1
)"""


def duration_s(t0: str, t1: str) -> str:
    """Seconds between two timestamptz expressions."""
    return f"extract(epoch FROM ({t1}) - ({t0}))::float8"


def rule_score(margin: str, duration: str, min_duration_s: float) -> str:
    """The documented rule score: 0.5 * mean margin + 0.5 * duration term, in [0, 1].

    The duration term is min(1, duration / (2 * min_duration)) (1 without a minimum).
    """
    if min_duration_s > 0:
        dur = f"LEAST(1.0, ({duration}) / {num(2 * min_duration_s)})"
    else:
        dur = "1.0"
    return (f"round(LEAST(1.0, GREATEST(0.0, 0.5 * coalesce({margin}, 0.0) + 0.5 * {dur}))"
            "::numeric, 4)::float8")


def evidence_aggs(columns: tuple[str, ...], alias: str = "f") -> str:
    """Aggregates `ev_<col>` as jsonb {mean, min, max} over the rows of an interval."""
    parts = []
    for col in columns:
        c = name(col)
        parts.append(
            f"jsonb_build_object('mean', round(avg({alias}.{c})::numeric, 3), "
            f"'min', round(min({alias}.{c})::numeric, 3), "
            f"'max', round(max({alias}.{c})::numeric, 3)) AS ev_{c}")
    return ",\n         ".join(parts)


def evidence_object(columns: tuple[str, ...], extra: str = "") -> str:
    """jsonb object of the `ev_<col>` aggregates plus `extra` key/value SQL pairs."""
    pairs = [f"'{name(c)}', ev_{name(c)}" for c in columns]
    if extra:
        pairs.append(extra)
    return f"jsonb_build_object({', '.join(pairs)})" if pairs else "'{}'::jsonb"


def closed(t0: str, t1: str, margin_s: float, at_end: bool = False) -> str:
    """The range contract: the span ended before hi - margin and does not touch lo.

    `at_end`: an interval that lasts to the last frame of an ended recording counts as
    closed too (win.data_ends): the kinds whose event is an interval of rows (states,
    stays, encounters), never those that wait for what comes after (a crossing's debounce,
    a route's horizon, a reaction's window)."""
    ended = f"({t1}) < win.hi - {secs(margin_s)}"
    if at_end:
        ended = f"({ended} OR win.data_ends)"
    return (f"({ended}) "
            f"AND (win.data_starts OR ({t0}) > win.lo + {secs(margin_s)})")


def upsert(select_sql: str, tiered: bool = False) -> str:
    """The INSERT … ON CONFLICT of candidate rows, counting the newly inserted ones.

    `tiered`: the SELECT ends with a `tier` column (else every row is 'strict', the
    column's default). A span's tier follows from its duration, so a conflict never
    changes it."""
    tier = ", tier" if tiered else ""
    return f"""ins AS (
  INSERT INTO candidates.candidates AS c
    (project_id, source_id, type, actors, zone, route, trigger, latency_s, start_ts, end_ts,
     rule_name, ontology_id, ontology_version, rule_score, evidence{tier})
  {select_sql}
  ON CONFLICT ON CONSTRAINT candidates_once DO UPDATE
    SET rule_score = EXCLUDED.rule_score, evidence = EXCLUDED.evidence, updated_at = now()
    WHERE c.status = 'new'
      AND (c.rule_score, c.evidence) IS DISTINCT FROM (EXCLUDED.rule_score, EXCLUDED.evidence)
  RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted FROM ins"""
