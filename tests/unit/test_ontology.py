"""Ontology files: the default validates; invalid files name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from workers.rules.compile import compile_ontology
from workers.rules.ontology import (
    DEFAULT_PATH,
    OntologyError,
    dump_ontology,
    load_ontology,
    parse_ontology,
)
from workers.simulate import EVENT_TYPES

TEXT = DEFAULT_PATH.read_text(encoding="utf-8")


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_default_defines_all_types_with_roles() -> None:
    onto = load_ontology(DEFAULT_PATH)
    assert (onto.name, onto.version) == ("default", 4)
    assert tuple(onto.types) == EVENT_TYPES
    assert onto.types["follow"].roles == ("leader", "follower")
    assert onto.types["overtake"].roles == ("passed", "passer")
    for sym in ("meet", "accompany", "handover"):
        assert onto.types[sym].roles == ("a", "b") and onto.types[sym].symmetric
    assert onto.types["stop"].min_duration_s == 2.0
    assert onto.types["accompany"].predicates["bridge"] == "distance < 2.5"
    assert onto.types["accompany"].bridge_max_s == 300.0
    assert onto.types["choose_route"].attributes == ("zone", "route")
    assert onto.features["smoothing_s"] == 1.0
    assert len(onto.sha256) == 64


def test_invalid_value_names_file_line_and_field() -> None:
    bad = TEXT.replace("min_duration_s: 8.0", "min_duration_s: -8.0")
    with pytest.raises(OntologyError) as err:
        parse_ontology(bad, "onto.yaml")
    line = _line_of(bad, "min_duration_s: -8.0")
    assert str(err.value).startswith(f"onto.yaml:{line}: field 'types.dwell.min_duration_s'")


def test_unknown_kind_and_extra_field() -> None:
    bad = TEXT.replace("kind: reaction", "kind: reflex")
    with pytest.raises(OntologyError, match=r"field 'types.startle.kind': 'reflex' is not one"):
        parse_ontology(bad, "o.yaml")
    extra = TEXT.replace("  stop:\n", "  stop:\n    colour: red\n")
    with pytest.raises(OntologyError, match=r"o.yaml:\d+: field 'types.stop'.*colour"):
        parse_ontology(extra, "o.yaml")


def test_disallowed_predicate_is_reported_at_its_line() -> None:
    bad = TEXT.replace("condition: speed < 0.2", "condition: speed < pg_sleep(10)")
    with pytest.raises(OntologyError) as err:
        parse_ontology(bad, "o.yaml")
    line = _line_of(bad, "pg_sleep")
    assert f"o.yaml:{line}: field 'types.stop.condition'" in str(err.value)
    assert "pg_sleep" in str(err.value)


def test_missing_kind_parameter_and_bad_yaml() -> None:
    bad = TEXT.replace("horizon_s: 3.0, ", "")
    with pytest.raises(OntologyError, match=r"types.choose_route.params.horizon_s.*needs"):
        parse_ontology(bad, "o.yaml")
    with pytest.raises(OntologyError, match=r"^o.yaml:3: not valid YAML"):
        parse_ontology("name: x\ntypes: [\n", "o.yaml")  # fails at the end
    with pytest.raises(OntologyError, match="must be a mapping"):
        parse_ontology("- 1\n", "o.yaml")


def test_unreadable_file_and_round_trip(tmp_path: Path) -> None:
    with pytest.raises(OntologyError, match="cannot read ontology"):
        load_ontology(tmp_path / "absent.yaml")
    data = yaml.safe_load(TEXT)
    data["version"] = 2
    again = parse_ontology(dump_ontology(data), "dumped.yaml")
    assert again.version == 2 and again.types.keys() == load_ontology(DEFAULT_PATH).types.keys()


def test_a_bridge_only_joins_state_intervals() -> None:
    on_meet = TEXT.replace("    kind: encounter\n",
                           "    kind: encounter\n    bridge: distance < 3\n")
    with pytest.raises(OntologyError, match=r"types.meet.bridge'?: rule kind 'encounter' has "
                                            r"no intervals to bridge"):
        parse_ontology(on_meet, "o.yaml")
    no_bridge = TEXT.replace("    bridge: distance < 2.5\n", "")
    with pytest.raises(OntologyError, match=r"types.accompany.bridge_max_s'?: bridge_max_s "
                                            r"without a bridge predicate"):
        parse_ontology(no_bridge, "o.yaml")
    with pytest.raises(OntologyError, match=r"types.accompany.bridge'?:.*speed"):
        parse_ontology(TEXT.replace("bridge: distance < 2.5", "bridge: velocity < 2.5"), "o.yaml")


def test_a_bridge_must_close_within_the_lookback() -> None:
    """Refused when the file is read, naming the file, the line and the field."""
    text = TEXT.replace("bridge_max_s: 300.0", "bridge_max_s: 600.0")
    line = text.splitlines().index("    bridge_max_s: 600.0") + 1
    with pytest.raises(OntologyError, match=rf"^o.yaml:{line}: field 'types.accompany."
                                            r"bridge_max_s': bridge_max_s 600 s is not "
                                            r"shorter than the type's lookback \(600 s\)"):
        parse_ontology(text, "o.yaml")
    # a longer lookback lets the same bridge close
    longer = text.replace("    bridge_max_s: 600.0\n",
                          "    bridge_max_s: 600.0\n    params: {lookback_s: 900.0}\n")
    onto = parse_ontology(longer, "o.yaml")
    assert onto.types["accompany"].lookback_s == 900.0
    assert compile_ontology(onto, 1)[list(onto.types).index("accompany")].lookback_s == 900.0
    assert compile_ontology(load_ontology(DEFAULT_PATH), 1)


def test_stop_spans_an_unseen_track_in_v4() -> None:
    stop = load_ontology(DEFAULT_PATH).types["stop"]
    assert (stop.unseen_max_s, stop.unseen_shift_m) == (60.0, 1.0)
    assert load_ontology(DEFAULT_PATH).types["dwell"].unseen_max_s is None


def test_unseen_spans_are_refused_where_they_could_not_work() -> None:
    """Each refusal names the file, the line and the field."""
    on_pair = TEXT.replace("    bridge_max_s: 300.0\n",
                           "    bridge_max_s: 300.0\n    unseen_max_s: 30.0\n")
    line = _line_of(on_pair, "unseen_max_s: 30.0")
    with pytest.raises(OntologyError, match=rf"^o.yaml:{line}: field 'types.accompany."
                                            r"unseen_max_s': rule kind 'pair_state' has no "
                                            r"track of its own"):
        parse_ontology(on_pair, "o.yaml")
    no_span = "\n".join(ln for ln in TEXT.splitlines() if "unseen_max_s" not in ln)
    with pytest.raises(OntologyError, match=r"types.stop.unseen_shift_m'?: unseen_shift_m "
                                            r"without unseen_max_s"):
        parse_ontology(no_span, "o.yaml")
    with pytest.raises(OntologyError, match=r"types.stop.unseen_max_s'?: unseen_max_s 1 s is "
                                            r"not longer than max_gap_s \(1 s\)"):
        parse_ontology(TEXT.replace("unseen_max_s: 60.0", "unseen_max_s: 1.0"), "o.yaml")
    with pytest.raises(OntologyError, match=r"types.stop.unseen_max_s'?: unseen_max_s 120 s "
                                            r"is not shorter than the type's lookback "
                                            r"\(120 s\)"):
        parse_ontology(TEXT.replace("unseen_max_s: 60.0", "unseen_max_s: 120.0"), "o.yaml")
