"""What every rule template shares: the per-type context (checked values, re-printed
thresholds, the recall tier) and the CTEs over the feature tables."""

from __future__ import annotations

from dataclasses import replace

from .ontology import EventType, Ontology
from .predicates import COLUMNS, parse_predicate
from .temporal import evidence_aggs, name, num, text_literal

CLOSE_MARGIN_S = 0.6  # an interval is closed once it ended this long before p_to
KIN_COLS = ", ".join(f"k.{c}" for c in sorted(COLUMNS["kinematics"]))
REL_COLS = ", ".join(f"r.{c}" for c in sorted(COLUMNS["relations"]))


class Ctx:
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
        self._onto, self._ontology_id = onto, int(ontology_id)
        self.wide = onto.widened(et.name)

    def widened(self) -> Ctx | None:
        """This type's context with the looser predicates of `candidates.widen` (the
        hysteresis is the widened condition unless the entry gives one), else None."""
        if self.wide is None:
            return None
        preds = {k: v for k, v in self.et.predicates.items() if k != "hysteresis"}
        preds.update(self.wide)
        wide = Ctx(self._onto, replace(self.et, predicates=preds), self._ontology_id)
        wide.wide = None
        return wide

    def strict_or_wide(self, alias: str) -> str:
        """Rows either the type or its widened predicates can use (`held`), over `alias`."""
        wide = self.widened()
        held = self.held(alias)
        return held if wide is None else f"({held}) OR ({wide.held(alias)})"

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

    def hold(self, alias: str = "b") -> str:
        """The predicate that keeps an interval alive: the hysteresis, else the condition."""
        field = "hysteresis" if "hysteresis" in self.et.predicates else "condition"
        return self.pred(field, alias)

    def held(self, alias: str) -> str:
        """Rows where the type's condition, its hysteresis or its bridge holds (the rows
        its islands are made of), over `alias`."""
        core = f"({self.pred('condition', alias)})"
        held = f"{core} OR ({self.hold(alias)})" if "hysteresis" in self.et.predicates else core
        bridge = self.bridge(alias)
        return held if bridge is None else f"{held} OR ({bridge})"

    def bridge(self, alias: str = "b") -> str | None:
        """The `bridge` predicate (rows that join two intervals of the same actors), or
        None."""
        return self.pred("bridge", alias) if "bridge" in self.et.predicates else None

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


def _other_classes(classes: tuple[str, ...]) -> str:
    """The `cls_out` CTE (tracks seen with a class outside `classes`), or '' for any class."""
    if not classes:
        return ""
    allowed = ", ".join(text_literal(c) for c in classes)
    return f"""cls_out AS MATERIALIZED (
  SELECT DISTINCT p.track_id
  FROM ingest.track_points p, win
  WHERE p.source_id = $2 AND p.ts >= win.lo AND p.ts <= win.hi
    AND p.class IS NOT NULL AND p.class NOT IN ({allowed})
),
"""


def kin_cte(classes: tuple[str, ...] = (), where: str = "") -> str:
    """The `kin` CTE; `where` (SQL over alias k) keeps only the rows a rule can use."""
    keep = ("\n    AND k.track_id NOT IN (SELECT o.track_id FROM cls_out o)" if classes else "")
    keep += f"\n    AND ({where})" if where else ""
    return f"""{_other_classes(classes)}kin AS (
  SELECT k.track_id, k.frame, k.ts, {KIN_COLS}
  FROM features.kinematics k, win
  WHERE k.source_id = $2 AND k.ts >= win.lo AND k.ts <= win.hi{keep}
)"""


# One order of each unordered pair (symmetric types), over alias r.
CANONICAL_PAIR = "(length(r.track_id), r.track_id) < (length(r.other_id), r.other_id)"


def rel_cte(symmetric: bool, classes: tuple[str, ...] = (), where: str = "",
            prev_ts: bool = False) -> str:
    """The `rel` CTE over the range's pair rows (pg_temp.pair_rows, filled by the candidates
    stage: candidates.fill_pair_rows); `where` (SQL over alias r) keeps only the rows the rule
    can use: a state or encounter reads only rows where its predicates hold, a sequence its
    `during` rows, so the window passes sort a few per cent of a dense scene's pair rows.
    With `prev_ts`, each row also carries the pair's previous row time (a sequence's gaps):
    a sort and a window pass that a rule reading `rel` twice (a handover) would otherwise
    pay for nothing, since a CTE read twice is materialized whole. Rows carry pair_key, the
    one bigint the rules partition by (features.pair_rows_of)."""
    canon = f"\n    AND {CANONICAL_PAIR}" if symmetric else ""
    keep = ("\n    AND r.track_id NOT IN (SELECT o.track_id FROM cls_out o)"
            "\n    AND r.other_id NOT IN (SELECT o.track_id FROM cls_out o)" if classes else "")
    keep += f"\n    AND ({where})" if where else ""
    prev = (",\n         lag(r.ts) OVER (PARTITION BY r.pair_key ORDER BY r.ts)"
            " AS prev_ts" if prev_ts else "")
    return f"""{_other_classes(classes)}rel AS (
  SELECT r.pair_key, r.track_id, r.other_id, r.frame, r.ts, {REL_COLS}{prev}
  FROM pg_temp.pair_rows r, win
  WHERE r.ts >= win.lo AND r.ts <= win.hi{canon}{keep}
)"""


def far_apart(c: Ctx, track: str, other: str, after: str | None = None,
              before: str | None = None) -> str:
    """EXISTS: a frame in (after, before) of the window where both tracks were seen and
    farther apart than the type's far_m (from kinematics, so also beyond the pair radius)."""
    far = num(c.f("far_m"))
    lo = f"> {after}" if after else ">= win.lo"
    hi = f"< {before}" if before else "<= win.hi"
    return f"""EXISTS (
      SELECT 1 FROM features.kinematics fa
      JOIN features.kinematics fb ON fb.source_id = fa.source_id AND fb.frame = fa.frame
      WHERE fa.source_id = $2 AND fa.track_id = {track} AND fb.track_id = {other}
        AND fa.ts {lo} AND fa.ts {hi} AND fb.ts {lo} AND fb.ts {hi}
        AND (fb.x - fa.x) * (fb.x - fa.x) + (fb.y - fa.y) * (fb.y - fa.y) > {far} * {far})"""


def kin_evidence(c: Ctx, t0: str, t1: str, track: str) -> tuple[str, str]:
    """A LATERAL join summarising kinematics evidence of `track` over [t0, t1]."""
    cols = c.evidence or ("speed",)
    join = (f"LEFT JOIN LATERAL (SELECT {evidence_aggs(cols)} FROM kin f "
            f"WHERE f.track_id = {track} AND f.ts BETWEEN {t0} AND {t1}) ev ON true")
    return join, ", ".join(f"'{name(col)}', ev.ev_{name(col)}" for col in cols)
