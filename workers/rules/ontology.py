"""Load and validate event ontologies (YAML) against ontologies/ontology.schema.json.

Errors name the file, the line and the field: the YAML is composed into nodes first so
every JSON-Schema error path (and every bad predicate) maps back to a source line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from workers.errors import UserError
from workers.settings import ONTOLOGIES_DIR

from .predicates import PredicateError, parse_predicate

SCHEMA_PATH = ONTOLOGIES_DIR / "ontology.schema.json"
DEFAULT_PATH = ONTOLOGIES_DIR / "default.yaml"
PREDICATE_FIELDS = ("condition", "hysteresis", "bridge", "first", "then", "during", "inner")
# Rule kinds whose intervals a `bridge` predicate can join (temporal.islands).
BRIDGE_KINDS = ("track_state", "pair_state")
BRIDGE_MAX_S = 300.0
"""Default `bridge_max_s`: how long after its last held row a bridge keeps an interval open."""
UNSEEN_KINDS = ("track_state",)
UNSEEN_SHIFT_M = 1.0
"""Default `unseen_shift_m`: how near to where it vanished a track must reappear for the
time between to count as held (docs/rules.md, "Unseen spans")."""
# Seconds of history each kind recomputes before p_from (params.lookback_s overrides).
LOOKBACK_S = {
    "zone_transition": 900.0, "zone_stay": 900.0, "route_choice": 900.0,
    # pair states and encounters: real conversations and walks together last minutes (MEVA:
    # up to 133 s); an interval longer than the lookback would never be emitted
    "track_state": 120.0, "pair_state": 600.0, "pair_sequence": 60.0, "encounter": 600.0,
    "reaction": 10.0,
}
# Which feature table each rule kind's predicates read.
KIND_TABLE = {
    "track_state": "kinematics", "pair_state": "relations", "pair_sequence": "relations",
    "encounter": "relations",
}
# Parameters each kind needs (numbers unless noted), with the kinds' documented meaning.
KIND_PARAMS: dict[str, dict[str, type]] = {
    "zone_transition": {"direction": str, "debounce_s": float, "half_width_s": float},
    "zone_stay": {"debounce_s": float},
    "track_state": {},
    "pair_state": {},
    "pair_sequence": {"within_s": float, "min_during_share": float},
    "encounter": {},
    "route_choice": {"debounce_s": float, "horizon_s": float, "tolerance_m": float},
    "reaction": {"latency_min_s": float, "latency_max_s": float, "window_s": float,
                 "min_speed_change": float, "min_turn_deg": float, "duration_s": float},
}


class OntologyError(UserError):
    """The ontology file is invalid."""


@dataclass(frozen=True)
class EventType:
    """One event type of an ontology, as validated."""

    name: str
    family: str
    kind: str
    roles: tuple[str, ...]
    symmetric: bool
    attributes: tuple[str, ...]
    predicates: dict[str, str]
    min_duration_s: float
    max_gap_s: float
    params: dict[str, Any]
    evidence: tuple[str, ...]
    classes: tuple[str, ...] = ()
    """Object classes the actors may have (tracks of other classes are left out; a track
    without a class counts as any). Empty: every class."""
    bridge_max_s: float = BRIDGE_MAX_S
    """With a `bridge` predicate: how long after the interval's last condition or
    hysteresis row the bridge rows keep it open (docs/rules.md, "Bridges")."""
    unseen_max_s: float | None = None
    """A track state only: a track that has no row for longer than max_gap_s and at most
    this long, and reappears within unseen_shift_m of where it was last seen, is in the
    state for that time (docs/rules.md, "Unseen spans"). None: a gap always splits."""
    unseen_shift_m: float = UNSEEN_SHIFT_M

    @property
    def table(self) -> str | None:
        return KIND_TABLE.get(self.kind)

    @property
    def lookback_s(self) -> float:
        """Seconds of history the type recomputes before p_from."""
        return float(self.params.get("lookback_s", LOOKBACK_S[self.kind]))


@dataclass(frozen=True)
class Ontology:
    """A validated ontology: its text, digest, parsed mapping and types."""

    name: str
    version: int
    text: str
    data: dict[str, Any]
    types: dict[str, EventType] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def features(self) -> dict[str, Any]:
        return dict(self.data.get("features") or {})

    @property
    def recall_factor(self) -> float | None:
        """`candidates.recall_factor` when it opens a recall tier (< 1), else None.

        With it, the kinds with a minimum duration also emit intervals lasting at least
        factor * the minimum but shorter than it, as `tier = 'recall'` candidates."""
        value = (self.data.get("candidates") or {}).get("recall_factor")
        return None if value is None or float(value) >= 1.0 else float(value)

    def widened(self, type_name: str) -> dict[str, str] | None:
        """The looser predicates of `candidates.widen.<type>` (condition, optionally
        hysteresis), else None.

        With them, the type also emits the intervals where the looser predicates hold and
        no candidate of the same actors overlaps, as `tier = 'recall'` candidates: the
        events the strict thresholds miss by distance or angle, for the scoring model to
        rank (docs/rules.md, "Recall tier")."""
        value = ((self.data.get("candidates") or {}).get("widen") or {}).get(type_name)
        return None if value is None else {str(k): str(v) for k, v in value.items()}


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of ontology files."""
    return dict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _line_of(node: yaml.Node | None, path: list[str | int]) -> int | None:
    """The 1-based line of the YAML node at `path` (or of its deepest existing parent)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for key in path:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) \
                and key < len(node.value):
            nxt = node.value[key]
        else:
            nxt = None
        if nxt is None:
            break
        node, line = nxt, nxt.start_mark.line + 1
    return line


def _where(name: str, node: yaml.Node | None, path: list[str | int]) -> str:
    dotted = ".".join(str(p) for p in path) or "<root>"
    line = _line_of(node, path)
    return f"{name}:{line if line is not None else '?'}: field '{dotted}'"


def parse_ontology(text: str, name: str = "<ontology>") -> Ontology:
    """Validate ontology text; raise OntologyError naming file, line and field."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark is not None else "?"
        raise OntologyError(f"{name}:{line}: not valid YAML: "
                            f"{getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(data, dict):
        raise OntologyError(f"{name}:1: field '<root>': the ontology must be a mapping")
    if isinstance(data.get("features"), dict) and "smoothing_window" in data["features"]:
        raise OntologyError(f"{_where(name, node, ['features', 'smoothing_window'])}: frames "
                            "mean a different time at every frame rate; since ontology v2 the "
                            "window is `smoothing_s` seconds (e.g. smoothing_s: 1.0)")
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = jsonschema.exceptions.best_match(errors) or errors[0]
        path = list(err.absolute_path)
        raise OntologyError(f"{_where(name, node, path)}: {err.message}")
    types: dict[str, EventType] = {}
    for tname, spec in data["types"].items():
        types[tname] = _event_type(tname, spec, name, node)
    _check_widen(data, types, name, node)
    return Ontology(name=str(data["name"]), version=int(data["version"]), text=text,
                    data=data, types=types)


# Rule kinds whose condition/hysteresis islands a `candidates.widen` entry can loosen.
WIDEN_KINDS = ("track_state", "pair_state", "encounter")


def _check_widen(data: dict[str, Any], types: dict[str, EventType], fname: str,
                 node: yaml.Node | None) -> None:
    """`candidates.widen`: each entry names a type of a kind with condition islands, and
    its predicates read that kind's feature table."""
    for tname, preds in ((data.get("candidates") or {}).get("widen") or {}).items():
        path: list[str | int] = ["candidates", "widen", tname]
        et = types.get(tname)
        if et is None:
            raise OntologyError(f"{_where(fname, node, path)}: no type {tname!r} in this "
                                f"ontology; widen one of {sorted(types)}")
        if et.kind not in WIDEN_KINDS or "inner" in et.predicates:
            raise OntologyError(f"{_where(fname, node, path)}: type {tname!r} (kind "
                                f"{et.kind!r}) has no condition islands to widen; widen a "
                                f"type of kind {', '.join(WIDEN_KINDS)} (not a handover)")
        for fld, text in preds.items():
            try:
                parse_predicate(text, et.table or "")
            except PredicateError as exc:
                raise OntologyError(f"{_where(fname, node, [*path, fld])}: {exc}") from exc


def _event_type(tname: str, spec: dict[str, Any], fname: str,
                node: yaml.Node | None) -> EventType:
    kind = spec["kind"]
    table = KIND_TABLE.get(kind)
    preds: dict[str, str] = {}
    for fld in PREDICATE_FIELDS:
        if fld not in spec:
            continue
        where = _where(fname, node, ["types", tname, fld])
        if table is None:
            raise OntologyError(f"{where}: rule kind {kind!r} takes no predicate")
        try:
            parse_predicate(spec[fld], table)
        except PredicateError as exc:
            raise OntologyError(f"{where}: {exc}") from exc
        preds[fld] = spec[fld]
    params = dict(spec.get("params") or {})
    for pname, ptype in KIND_PARAMS[kind].items():
        where = _where(fname, node, ["types", tname, "params", pname])
        if pname not in params:
            raise OntologyError(f"{where}: rule kind {kind!r} needs parameter {pname!r}")
        ok = isinstance(params[pname], str) if ptype is str else (
            isinstance(params[pname], (int, float)) and not isinstance(params[pname], bool))
        if not ok:
            raise OntologyError(f"{where}: must be a {ptype.__name__}")
    if kind == "zone_transition" and params["direction"] not in ("in", "out"):
        raise OntologyError(f"{_where(fname, node, ['types', tname, 'params', 'direction'])}"
                            ": must be 'in' or 'out'")
    if "bridge" in preds and kind not in BRIDGE_KINDS:
        raise OntologyError(f"{_where(fname, node, ['types', tname, 'bridge'])}: rule kind "
                            f"{kind!r} has no intervals to bridge; a bridge joins the "
                            f"intervals of a {' or '.join(BRIDGE_KINDS)}")
    if "bridge_max_s" in spec and "bridge" not in preds:
        raise OntologyError(f"{_where(fname, node, ['types', tname, 'bridge_max_s'])}: "
                            "bridge_max_s without a bridge predicate; add `bridge` or drop it")
    if kind == "encounter" and ("inner" in preds) != ("min_inner_s" in params):
        raise OntologyError(f"{_where(fname, node, ['types', tname])}: an encounter with "
                            "`inner` needs params min_inner_s/max_inner_s (and vice versa)")
    et = EventType(
        name=tname, family=spec["family"], kind=kind, roles=tuple(spec["roles"]),
        symmetric=bool(spec.get("symmetric", False)),
        attributes=tuple(spec.get("attributes") or ()), predicates=preds,
        min_duration_s=float(spec.get("min_duration_s", 0.0)),
        max_gap_s=float(spec.get("max_gap_s", 0.3)), params=params,
        evidence=tuple(spec.get("evidence") or ()), classes=tuple(spec.get("classes") or ()),
        bridge_max_s=float(spec.get("bridge_max_s", BRIDGE_MAX_S)),
        unseen_max_s=(float(spec["unseen_max_s"]) if "unseen_max_s" in spec else None),
        unseen_shift_m=float(spec.get("unseen_shift_m", UNSEEN_SHIFT_M)))
    _check_spans(et, spec, fname, node)
    return et


def _check_spans(et: EventType, spec: dict[str, Any], fname: str,
                 node: yaml.Node | None) -> None:
    """What holds an interval open must let it close within the type's lookback: a bridge's
    bridge_max_s, and unseen_max_s (a track state's, longer than its gap tolerance; the
    shift only with the span)."""
    def where(field: str) -> str:
        return _where(fname, node, ["types", et.name, field])

    lookback = et.lookback_s
    if "bridge" in et.predicates and et.bridge_max_s >= lookback:
        field = "bridge_max_s" if "bridge_max_s" in spec else "bridge"
        raise OntologyError(f"{where(field)}: bridge_max_s {et.bridge_max_s:g} s is not "
                            f"shorter than the type's lookback ({lookback:g} s), so a bridged "
                            "interval could never close in a scheduled tick; lower "
                            "bridge_max_s or raise params.lookback_s")
    if "unseen_shift_m" in spec and et.unseen_max_s is None:
        raise OntologyError(f"{where('unseen_shift_m')}: unseen_shift_m without "
                            "unseen_max_s; add `unseen_max_s` or drop it")
    unseen = et.unseen_max_s
    if unseen is None:
        return
    if et.kind not in UNSEEN_KINDS:
        raise OntologyError(f"{where('unseen_max_s')}: rule kind {et.kind!r} has no track "
                            f"of its own to be unseen; unseen_max_s is for a "
                            f"{' or '.join(UNSEEN_KINDS)}")
    if unseen <= et.max_gap_s:
        raise OntologyError(f"{where('unseen_max_s')}: unseen_max_s {unseen:g} s is not "
                            f"longer than max_gap_s ({et.max_gap_s:g} s), which already joins "
                            "such gaps; raise unseen_max_s or drop it")
    if unseen >= lookback:
        raise OntologyError(f"{where('unseen_max_s')}: unseen_max_s {unseen:g} s is not "
                            f"shorter than the type's lookback ({lookback:g} s), so an "
                            "interval across it could never close in a scheduled tick; "
                            "lower unseen_max_s or raise params.lookback_s")


def load_ontology(path: str | Path) -> Ontology:
    """Read and validate an ontology file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise OntologyError(f"cannot read ontology {p}: {exc.strerror}; pass an existing "
                            "YAML file") from exc
    return parse_ontology(text, str(p))


def with_recall_tier(onto: Ontology, recall_factor: float, name: str | None = None,
                     description: str | None = None,
                     widen: dict[str, dict[str, str]] | None = None,
                     version: int | None = None) -> Ontology:
    """A copy of `onto` with `candidates.recall_factor` (and `candidates.widen`, when
    given) set, optionally renamed, as re-validated YAML text."""
    extra: dict[str, Any] = {"recall_factor": float(recall_factor)}
    if widen:
        extra["widen"] = {k: dict(v) for k, v in widen.items()}
    data = {**onto.data, "candidates": {**(onto.data.get("candidates") or {}), **extra}}
    if name is not None:
        data["name"] = name
    if description is not None:
        data["description"] = description
    if version is not None:
        data["version"] = int(version)
    return parse_ontology(dump_ontology(data), f"<{data['name']} v{data['version']}>")


def dump_ontology(data: dict[str, Any]) -> str:
    """YAML text of an ontology mapping (used by `secinf tune` for new versions)."""
    return str(yaml.safe_dump(data, sort_keys=False, width=100))
