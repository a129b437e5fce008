"""Dataset versions of verified events: export (Parquet, manifest, data card, plots),
quality gates, and verification of published files. See docs/datasets.md."""

from workers.datasets.catalog import list_versions, show_version, verify_version
from workers.datasets.export import ExportRequest, ExportResult, export
from workers.datasets.gates import GateConfig, GateResult

__all__ = ["ExportRequest", "ExportResult", "GateConfig", "GateResult", "export",
           "list_versions", "show_version", "verify_version"]
