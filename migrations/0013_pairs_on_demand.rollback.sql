-- 0013 rollback: features.relations back to a stored hypertable (empty: delete the
-- sources' features.watermarks rows to recompute it), the fill column dropped. The view
-- goes first; sql/ of the release rolled back to registers the relations stage again.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DROP VIEW IF EXISTS features.relations;
DROP FUNCTION IF EXISTS features.pair_rows(bigint, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS features.pair_track_rows(bigint, text, text, timestamptz, timestamptz);
CREATE TABLE features.relations (
  project_id     uuid NOT NULL,
  source_id      bigint NOT NULL,
  ts             timestamptz NOT NULL,
  frame          bigint NOT NULL,
  track_id       text NOT NULL,
  other_id       text NOT NULL,
  distance       double precision NOT NULL,
  bearing        double precision,
  lon_offset     double precision,
  lat_offset     double precision,
  speed          double precision,
  other_speed    double precision,
  rel_speed      double precision,
  approach_speed double precision,
  heading_diff   double precision
);
SELECT create_hypertable('features.relations', 'ts', chunk_time_interval => interval '1 day',
                         create_default_indexes => false);
CREATE INDEX relations_source_ts_idx ON features.relations (source_id, ts);
-- The column is this release's own (0013).
-- squawk-ignore ban-drop-column
ALTER TABLE rules.ontologies DROP COLUMN IF EXISTS pair_rows_sql;
