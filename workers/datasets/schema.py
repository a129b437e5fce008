"""The layout of a dataset version's files: Parquet schemas, splits and the schema version.

Bump SCHEMA_VERSION whenever a column is added, removed, renamed or retyped: a new schema
version makes the next dataset version a major one.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1
SPLITS = ("train", "val", "test")
TIMESTAMP = pa.timestamp("us", tz="UTC")

ACTOR = pa.struct([pa.field("role", pa.string(), nullable=False),
                   pa.field("track_id", pa.string(), nullable=False)])

# One row per verified event.
EVENTS_SCHEMA = pa.schema([
    pa.field("event_id", pa.int64(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),       # the source's name
    pa.field("type", pa.string(), nullable=False),
    pa.field("actors", pa.list_(ACTOR), nullable=False),   # roles in name order
    pa.field("zone", pa.string()),
    pa.field("route", pa.string()),
    pa.field("trigger", pa.string()),
    pa.field("latency_s", pa.float64()),
    pa.field("start_ts", TIMESTAMP, nullable=False),
    pa.field("end_ts", TIMESTAMP, nullable=False),
    pa.field("start_s", pa.float64(), nullable=False),     # seconds since the source's origin
    pa.field("end_s", pa.float64(), nullable=False),
    pa.field("duration_s", pa.float64(), nullable=False),
    pa.field("confidence", pa.float64(), nullable=False),
    pa.field("verification", pa.string(), nullable=False),  # human | model | rule
    pa.field("rule_score", pa.float64()),
    pa.field("model_score", pa.float64()),
    pa.field("model_version", pa.string()),
    pa.field("ontology_version", pa.int64()),
    pa.field("units", pa.string(), nullable=False),        # m (ground plane) | px
])

# One row per track point of each actor over the event's span ± context.
FEATURE_COLUMNS = ("dt", "x", "y", "vx", "vy", "speed", "accel", "jerk", "heading",
                   "turn_rate", "curvature")
FEATURES_SCHEMA = pa.schema([
    pa.field("event_id", pa.int64(), nullable=False),
    pa.field("role", pa.string(), nullable=False),
    pa.field("track_id", pa.string(), nullable=False),
    pa.field("ts", TIMESTAMP, nullable=False),
    pa.field("t_rel_s", pa.float64(), nullable=False),     # seconds since the event's start
    pa.field("in_span", pa.bool_(), nullable=False),
    pa.field("frame", pa.int64(), nullable=False),
    pa.field("segment", pa.int64(), nullable=False),
    *[pa.field(c, pa.float64(), nullable=c not in ("x", "y")) for c in FEATURE_COLUMNS],
])

TABLES = {"events": EVENTS_SCHEMA, "features": FEATURES_SCHEMA}


def table_path(split: str, table: str) -> str:
    """Path of a split's table inside the version's directory."""
    return f"{split}/{table}.parquet"


def describe(schema: pa.Schema) -> list[dict[str, object]]:
    """The schema as the manifest lists it: name, type, nullable."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]
