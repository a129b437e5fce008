-- 0018 rollback: callers' lifetimes fall back to the functions' defaults, keys lose their
-- owners (reviews by key stop: re-link them after a re-migrate), channels go back to the
-- fixed names once sql/ of the older release is applied.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
-- The tables and the column are this release's own (0018) and small.
-- squawk-ignore ban-drop-table
DROP TABLE IF EXISTS auth.notify_channels;
-- The view shows the column; the sql/ tier recreates it at the next migrate.
DROP VIEW IF EXISTS api.api_keys;
-- squawk-ignore ban-drop-column
ALTER TABLE core.api_keys DROP COLUMN IF EXISTS owner;
-- squawk-ignore ban-drop-table
DROP TABLE IF EXISTS auth.token_lifetimes;
