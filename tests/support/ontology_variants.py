"""Variants of the default ontology for tests: one type's fields dropped or set."""

from __future__ import annotations

from typing import Any

from workers.rules.ontology import (
    DEFAULT_PATH,
    Ontology,
    dump_ontology,
    load_ontology,
    parse_ontology,
)


def default_with(etype: str, drop: tuple[str, ...] = (), **fields: Any) -> Ontology:
    """The default ontology with type `etype`'s `drop` fields removed and `fields` set."""
    data = load_ontology(DEFAULT_PATH).data
    spec = {k: v for k, v in data["types"][etype].items() if k not in drop}
    spec.update(fields)
    return parse_ontology(dump_ontology({**data, "types": {**data["types"], etype: spec}}),
                          "test")
