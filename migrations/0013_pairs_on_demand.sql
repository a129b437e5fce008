-- 0013 · pairs on demand: features.relations is no longer a stored hypertable but a view
-- over features.pair_rows(), computed from features.kinematics when read (sql/40_features_
-- relations.sql). A dense crowd wrote 1.29 M relation rows for 39,766 points, 6.3 s of a
-- 12.9 s tick, of which the pair rules use a few per cent. The candidates stage now keeps
-- only the rows some active pair rule can use, in a temporary table, from the statement
-- the rules compiler writes into rules.ontologies.pair_rows_sql (docs/pipeline.md, "Pairs
-- on demand"). Stored relation rows are derived data (recomputed from kinematics), so
-- dropping them loses nothing; the view returns the same rows.
-- depends: 0012_features_seconds
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

-- The stage and its watermarks go first: pipeline.watermark() is the oldest over the
-- enabled stages, so a left-over 'relations' row would hold every source's watermark.
DELETE FROM pipeline.stages WHERE name = 'relations';
DELETE FROM features.watermarks WHERE stage = 'relations';
-- The stage function of the stored table; nothing else calls it.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS features.compute_relations(bigint, timestamptz, timestamptz);
-- Derived rows only (see above); the view of the same name replaces the table.
-- squawk-ignore ban-drop-table
DROP TABLE IF EXISTS features.relations;

-- One pair row (sql/40_features_relations.sql): what features.pair_rows() and its kin return
-- and what the candidates stage's temporary table pg_temp.pair_rows holds. The columns of
-- the stored table this migration drops, less project_id and source_id.
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

-- The fill statement of the candidates stage's pair rows (NULL: no pair rules). Written by
-- `secinf rules load`; an ontology loaded before 0013 has NULL here and compiled rules that
-- read the view, which are correct and slower until it is loaded again.
ALTER TABLE rules.ontologies ADD COLUMN pair_rows_sql text;

RESET ROLE;
