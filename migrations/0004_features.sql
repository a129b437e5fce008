-- 0004 · features: per-point kinematics, zone presence intervals, pairwise relations,
-- change points, watermarks; the pipeline's settings, stage registry and run log.
-- depends: 0003_ingest
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

CREATE SCHEMA features;
CREATE SCHEMA pipeline;

-- ======================================================================= kinematics
-- One row per track point: derivatives by backward differences within a segment (a gap
-- longer than the gap limit starts a new segment and no derivative crosses it).
CREATE TABLE features.kinematics (
  project_id uuid NOT NULL,
  source_id  bigint NOT NULL,
  track_id   text NOT NULL,
  frame      bigint NOT NULL,
  ts         timestamptz NOT NULL,
  segment    bigint NOT NULL,             -- 0-based; +1 after every gap over the limit
  dt         double precision,            -- seconds since the previous point (NULL: segment start)
  x          double precision NOT NULL,   -- smoothed when smoothing is on
  y          double precision NOT NULL,
  vx         double precision,            -- units/s
  vy         double precision,
  speed      double precision,
  accel      double precision,            -- d speed / dt (tangential), units/s²
  jerk       double precision,            -- d accel / dt, units/s³
  heading    double precision,            -- degrees, atan2(vy, vx), in (-180, 180]
  turn_rate  double precision,            -- degrees/s, wrapped difference of headings
  curvature  double precision             -- 1/units; NULL when speed ≈ 0
);
SELECT create_hypertable('features.kinematics', 'ts', chunk_time_interval => interval '1 day',
                         create_default_indexes => false);
-- Index upkeep is most of the insert cost: one B-tree for the per-track reads (segment seed,
-- zone presence, change points) and a BRIN for time ranges (ticks write time-ordered
-- batches, so block ranges stay narrow; a BRIN costs almost nothing per insert).
CREATE INDEX kinematics_track_idx ON features.kinematics (source_id, track_id, ts);
CREATE INDEX kinematics_source_ts_brin ON features.kinematics USING brin (source_id, ts)
  WITH (pages_per_range = 16);

-- ======================================================================= zone presence
-- Intervals inside a zone, with hysteresis (a crossing counts once confirmed for k frames).
CREATE TABLE features.zone_presence (
  project_id    uuid NOT NULL,
  source_id     bigint NOT NULL,
  track_id      text NOT NULL,
  zone_id       bigint NOT NULL,
  zone_name     text NOT NULL,
  entered_at    timestamptz NOT NULL,
  left_at       timestamptz,              -- NULL: still inside at the end of the data
  entered_frame bigint NOT NULL,
  left_frame    bigint
);
CREATE INDEX zone_presence_track_idx ON features.zone_presence (source_id, track_id, entered_at);
CREATE INDEX zone_presence_zone_idx ON features.zone_presence (source_id, zone_id, entered_at);

-- ======================================================================= relations
-- Both orders of every pair closer than the radius at the same frame.
CREATE TABLE features.relations (
  project_id     uuid NOT NULL,
  source_id      bigint NOT NULL,
  ts             timestamptz NOT NULL,
  frame          bigint NOT NULL,
  track_id       text NOT NULL,
  other_id       text NOT NULL,
  distance       double precision NOT NULL,
  bearing        double precision,        -- degrees of the other in my heading frame, + left
  lon_offset     double precision,        -- + ahead
  lat_offset     double precision,        -- + left
  speed          double precision,
  other_speed    double precision,
  rel_speed      double precision,        -- |v_other - v_me|
  approach_speed double precision,        -- d distance / dt, < 0 when closing
  heading_diff   double precision         -- abs wrapped, [0, 180]
);
SELECT create_hypertable('features.relations', 'ts', chunk_time_interval => interval '1 day',
                         create_default_indexes => false);
-- Readers (the tick's delete, the rules) select by source and time range only.
CREATE INDEX relations_source_ts_idx ON features.relations (source_id, ts);

-- ======================================================================= change points
-- Two-sided CUSUM per track on speed and heading (plpython/change_points.py).
CREATE TABLE features.change_points (
  project_id uuid NOT NULL,
  source_id  bigint NOT NULL,
  track_id   text NOT NULL,
  ts         timestamptz NOT NULL,
  frame      bigint NOT NULL,
  signal     text NOT NULL CHECK (signal IN ('speed', 'heading')),
  direction  bigint NOT NULL CHECK (direction IN (-1, 1)),  -- +1 increase, -1 decrease
  magnitude  double precision NOT NULL,   -- size of the mean shift (units/s or degrees)
  score      double precision NOT NULL    -- CUSUM statistic at the alarm ÷ threshold (≥ 1)
);
CREATE INDEX change_points_track_idx ON features.change_points (source_id, track_id, ts);
CREATE INDEX change_points_ts_idx ON features.change_points (source_id, ts);

-- ======================================================================= watermarks
-- Per source and stage: everything at or before the watermark has been processed.
CREATE TABLE features.watermarks (
  project_id uuid NOT NULL,
  source_id  bigint NOT NULL REFERENCES ingest.sources ON DELETE CASCADE,
  stage      text NOT NULL,
  watermark  timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_id, stage)
);

-- ======================================================================= pipeline
-- Settings: project_id NULL is the default; a project's row overrides it.
CREATE TABLE pipeline.settings (
  project_id uuid REFERENCES core.projects ON DELETE CASCADE,
  key        text NOT NULL,
  value      jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX settings_key ON pipeline.settings (project_id, key) NULLS NOT DISTINCT;

INSERT INTO pipeline.settings (project_id, key, value) VALUES
  (NULL, 'smoothing_window', '3'),          -- frames of the centred moving average; 1 = off
  (NULL, 'gap_limit_s', '1.0'),             -- no derivative across a longer gap
  (NULL, 'hysteresis_s', '1.0'),            -- zone crossings confirmed for ceil(s × fps) frames
  (NULL, 'hysteresis_frames', 'null'),      -- explicit k; overrides hysteresis_s when set
  (NULL, 'relation_radius_m', '10.0'),      -- pair radius for metric sources
  (NULL, 'relation_radius_px', '150.0'),    -- pair radius for pixel sources
  (NULL, 'settle_s', '2.0'),                -- a scheduled tick leaves the newest seconds alone
  (NULL, 'tick_max_span_s', '3600'),        -- at most this much new data per source per tick
  (NULL, 'cusum_warmup', '10'),             -- samples that estimate the reference mean
  (NULL, 'cusum_speed_k', '0.15'),          -- allowed drift (units/s)
  (NULL, 'cusum_speed_h', '2.0'),           -- alarm threshold (units/s · samples)
  (NULL, 'cusum_heading_k', '8.0'),         -- allowed drift (degrees)
  (NULL, 'cusum_heading_h', '150.0'),       -- alarm threshold (degrees · samples)
  (NULL, 'cusum_min_speed', '0.3');         -- heading samples count only above this speed

-- Stages run by pipeline.tick(), per source, in position order. The function has the
-- signature (p_source bigint, p_from timestamptz, p_to timestamptz) RETURNS bigint.
CREATE TABLE pipeline.stages (
  name     text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  function regprocedure NOT NULL,
  position bigint NOT NULL UNIQUE,
  enabled  boolean NOT NULL DEFAULT true
);

-- One row per source-range a tick processed (or failed to).
CREATE TABLE pipeline.runs (
  run_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id  uuid NOT NULL,
  source_id   bigint NOT NULL REFERENCES ingest.sources ON DELETE CASCADE,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  from_ts     timestamptz,                -- recomputed range (from the earliest stage)
  to_ts       timestamptz,
  points      bigint NOT NULL DEFAULT 0,  -- track points in the range
  dirty       bigint NOT NULL DEFAULT 0, -- dirty ranges consumed
  status      text NOT NULL CHECK (status IN ('ok', 'error')),
  error       text,
  stats       jsonb NOT NULL DEFAULT '{}' -- rows written per stage; "ms": milliseconds per stage
);
CREATE INDEX runs_source_idx ON pipeline.runs (source_id, started_at);

RESET ROLE;
