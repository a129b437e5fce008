"""Ingest: track files, poses and scene geometry into the ingest schema.

`ingest(conn, IngestRequest(...))` validates with Polars, COPYs into a staging table and
merges with `ingest.merge_staged` in one transaction (see docs/ingest.md).
"""

from workers.ingest.load import IngestRequest, content_key, ingest
from workers.ingest.summary import IngestSummary, Rejected

__all__ = ["IngestRequest", "IngestSummary", "Rejected", "content_key", "ingest"]
