-- 0014 rollback: the pair-row functions and the view go with the type; sql/ of the release
-- rolled back to creates them again with their own column lists.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DROP VIEW IF EXISTS features.relations;
DROP FUNCTION IF EXISTS features.pair_track_rows(bigint, text, text, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS features.pair_rows(bigint, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS features.pair_rows_of(bigint, timestamptz, timestamptz, text[]);
DROP TYPE IF EXISTS features.pair_row;
