-- 0016 · the pair row type gains pair_key: one bigint for the ordered pair (track, other),
-- unique within one call of features.pair_rows_of. The pair rules partition, sort and group
-- by it instead of two text columns (sql/40_features_relations.sql, docs/pipeline.md "Once
-- per range"). Applying sql/ creates the functions that return it.
-- depends: 0015_pair_boxes
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

-- CASCADE: a session's typed temporary table pg_temp.pair_rows, if one is open.
ALTER TYPE features.pair_row ADD ATTRIBUTE pair_key bigint CASCADE;

RESET ROLE;
