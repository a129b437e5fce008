"""Ontology-driven rules: validated YAML ontologies, allow-listed predicates, generated
rule SQL per event type, and the candidates they emit."""

from .compile import CompiledRule, compile_ontology
from .ontology import Ontology, OntologyError, load_ontology, parse_ontology
from .predicates import Predicate, PredicateError, parse_predicate

__all__ = [
    "CompiledRule", "Ontology", "OntologyError", "Predicate", "PredicateError",
    "compile_ontology", "load_ontology", "parse_ontology", "parse_predicate",
]
