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

-- The fill statement of the candidates stage's pair rows (NULL: no pair rules). Written by
-- `secinf rules load`; an ontology loaded before 0013 has NULL here and compiled rules that
-- read the view, which are correct and slower until it is loaded again.
ALTER TABLE rules.ontologies ADD COLUMN pair_rows_sql text;

RESET ROLE;
