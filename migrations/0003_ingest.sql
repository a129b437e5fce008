-- 0003 · ingest: sources, batches, track points (hypertable), poses, scene geometry,
-- triggers, and the dirty ranges that late data leaves for the pipeline.
-- depends: 0002_core_tenancy
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

CREATE SCHEMA ingest;

-- ======================================================================= sources
-- One camera / scene / recording. Coordinates are transformed to a metric ground plane at
-- ingest when a transform is known; otherwise the source stays in pixels (units = 'px')
-- and every unit-dependent threshold downstream must scale or refuse.
CREATE TABLE ingest.sources (
  source_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id  uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
  units       text NOT NULL DEFAULT 'm' CHECK (units IN ('m', 'px')),
  -- {"scale": metres_per_pixel} or {"homography": [[h11,h12,h13],[h21,h22,h23],[h31,h32,h33]]}
  transform   jsonb,
  fps         double precision CHECK (fps > 0),
  time_origin timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00',
  video_uri   text,
  attributes  jsonb NOT NULL DEFAULT '{}',
  high_water  timestamptz,               -- newest ts merged so far (late data is below it)
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project_id, name)
);

-- ======================================================================= batches
-- One submission. The idempotency key makes re-submission a no-op that returns the
-- original summary; status says whether its rows were applied.
CREATE TABLE ingest.batches (
  batch_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id      uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  source_id       bigint NOT NULL REFERENCES ingest.sources ON DELETE CASCADE,
  idempotency_key text NOT NULL,
  format          text NOT NULL,          -- canonical-csv, canonical-parquet, jsonl, mot, eth, api
  file_name       text,
  status          text NOT NULL CHECK (status IN ('applied', 'rejected')),
  rows_total      bigint NOT NULL DEFAULT 0,
  rows_inserted   bigint NOT NULL DEFAULT 0,
  rows_duplicate  bigint NOT NULL DEFAULT 0,  -- already stored (overlap with earlier batches)
  rows_invalid    bigint NOT NULL DEFAULT 0,
  rows_ignored    bigint NOT NULL DEFAULT 0,  -- skipped by format rule (MOT gt rows with conf 0)
  errors          jsonb NOT NULL DEFAULT '[]', -- first structured errors {row, column, code, message}
  min_ts          timestamptz,
  max_ts          timestamptz,
  created_by      text NOT NULL DEFAULT session_user,
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project_id, idempotency_key)
);
CREATE INDEX batches_source_idx ON ingest.batches (source_id, created_at);

-- ======================================================================= track points
-- No foreign keys on the hypertable (a per-row check would halve ingest speed): the merge
-- function is the only writer and takes project and source from the batch row.
CREATE TABLE ingest.track_points (
  project_id uuid NOT NULL,
  source_id  bigint NOT NULL,
  track_id   text NOT NULL,
  frame      bigint NOT NULL CHECK (frame >= 0),
  ts         timestamptz NOT NULL,
  x          double precision NOT NULL,  -- metres when the source is metric, else pixels
  y          double precision NOT NULL,
  raw_x      double precision,           -- as received, before the source's transform
  raw_y      double precision,
  class      text,
  confidence real CHECK (confidence BETWEEN 0 AND 1),
  batch_id   bigint NOT NULL
);
SELECT create_hypertable('ingest.track_points', 'ts', chunk_time_interval => interval '1 day',
                         create_default_indexes => false);
-- ONE index (each extra index roughly halves ingest speed). Led by (source_id, ts) it
-- serves every reader (all read one source's time range) and, with track and frame, it
-- is the key: a hypertable's unique index must hold its time column, and a frame has one
-- timestamp per source. (source, track, frame) itself is kept unique by ingest: appends
-- only take frames newer than any stored, overlaps anti-join on it (docs/ingest.md). Rows
-- appended in time order land on the index's right edge.
CREATE UNIQUE INDEX track_points_key ON ingest.track_points (source_id, ts, track_id, frame);

-- Optional per-point keypoints (COCO-17: x, y, score per keypoint → 51 numbers).
CREATE TABLE ingest.poses (
  project_id uuid NOT NULL,
  source_id  bigint NOT NULL,
  track_id   text NOT NULL,
  frame      bigint NOT NULL,
  ts         timestamptz NOT NULL,
  keypoints  real[] NOT NULL CHECK (cardinality(keypoints) = 51),
  batch_id   bigint NOT NULL
);
SELECT create_hypertable('ingest.poses', 'ts', chunk_time_interval => interval '1 day',
                         create_default_indexes => false);
CREATE UNIQUE INDEX poses_key ON ingest.poses (source_id, ts, track_id, frame);

-- ======================================================================= scene geometry
-- Postgres's own geometric types: planar coordinates in the source's units, small
-- polygons, point-in-polygon with `@>` — no PostGIS needed.
CREATE TABLE ingest.zones (
  zone_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  source_id  bigint NOT NULL REFERENCES ingest.sources ON DELETE CASCADE,
  name       text NOT NULL,
  kind       text NOT NULL DEFAULT 'zone' CHECK (kind IN ('zone', 'branch')),
  polygon    polygon NOT NULL,
  attributes jsonb NOT NULL DEFAULT '{}',
  UNIQUE (source_id, name)
);

CREATE TABLE ingest.routes (
  route_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  source_id  bigint NOT NULL REFERENCES ingest.sources ON DELETE CASCADE,
  name       text NOT NULL,
  from_zone  text NOT NULL,              -- name of the branch zone the route leaves
  path       path NOT NULL,              -- open polyline
  UNIQUE (source_id, name)
);

CREATE TABLE ingest.triggers (
  trigger_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  source_id  bigint NOT NULL REFERENCES ingest.sources ON DELETE CASCADE,
  name       text NOT NULL,
  kind       text NOT NULL DEFAULT 'event',
  ts         timestamptz NOT NULL,
  position   point,                      -- NULL: affects the whole scene
  radius     double precision CHECK (radius > 0),
  UNIQUE (source_id, name)
);

-- ======================================================================= dirty ranges
-- Written by ingest whenever a batch lands data at or below a source's feature watermark
-- (late or out-of-order data). The pipeline re-computes each range and deletes the row in
-- the same transaction. See docs/pipeline.md.
CREATE TABLE ingest.dirty_ranges (
  range_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id uuid NOT NULL,
  source_id  bigint NOT NULL REFERENCES ingest.sources ON DELETE CASCADE,
  from_ts    timestamptz NOT NULL,
  to_ts      timestamptz NOT NULL CHECK (to_ts >= from_ts),
  batch_id   bigint,
  reason     text NOT NULL DEFAULT 'late data',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dirty_ranges_source_idx ON ingest.dirty_ranges (source_id, from_ts);

RESET ROLE;
