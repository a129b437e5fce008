-- 0016 rollback: the pair rows lose pair_key; sql/ of the release rolled back to creates
-- the functions that return the shorter row.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
ALTER TYPE features.pair_row DROP ATTRIBUTE IF EXISTS pair_key CASCADE;
