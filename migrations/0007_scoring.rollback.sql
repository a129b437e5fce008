-- 0007 rollback: drop the scoring schema (sql/70_scoring.sql's functions go with it) and
-- the embedding index on candidates.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DROP INDEX IF EXISTS candidates.candidates_embedding_hnsw;
DROP SCHEMA IF EXISTS scoring CASCADE;
