"""Ingest: track files, poses and scene geometry into the ingest schema.

`ingest(conn, IngestRequest(...))` validates with Polars and COPYs append chunks straight
into ingest.track_points (others through a stage and `ingest.close_batch`) in one
transaction (see docs/ingest.md).
"""

from workers.ingest.load import IngestRequest, content_key, ingest
from workers.ingest.summary import IngestSummary, Rejected

__all__ = ["IngestRequest", "IngestSummary", "Rejected", "content_key", "ingest"]
