-- 0014 · one row type for pair rows: features.pair_rows_of() (the grid join, written once),
-- features.pair_rows(), features.pair_track_rows() and the candidates stage's temporary
-- table pg_temp.pair_rows all have the type features.pair_row (sql/40_features_relations.sql,
-- sql/55_candidates_stage.sql), instead of three copies of the column list. A function's
-- return type cannot be changed in place, so the functions of 0013's release and the view
-- over them are dropped here; applying sql/ creates them again, with the view's grants.
-- depends: 0013_pairs_on_demand
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

-- Recreated by sql/40_features_relations.sql in the same `secinf db up`; nothing is stored.
-- squawk-ignore ban-drop-view
DROP VIEW IF EXISTS features.relations;
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS features.pair_track_rows(bigint, text, text, timestamptz, timestamptz);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS features.pair_rows(bigint, timestamptz, timestamptz);

-- The columns of the stored table 0013 dropped, less project_id and source_id.
CREATE TYPE features.pair_row AS (
  track_id       text,
  other_id       text,
  frame          bigint,
  ts             timestamptz,
  distance       double precision,
  bearing        double precision,        -- degrees of the other in my heading frame, + left
  lon_offset     double precision,        -- + ahead
  lat_offset     double precision,        -- + left
  speed          double precision,
  other_speed    double precision,
  rel_speed      double precision,        -- |v_other - v_me|
  approach_speed double precision,        -- d distance / dt, < 0 when closing
  heading_diff   double precision         -- abs wrapped, [0, 180]
);

RESET ROLE;
