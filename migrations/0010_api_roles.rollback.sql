-- 0010 rollback: drop the API's index on events. The role settings stay: roles are
-- cluster-wide and serve every database of the cluster (0001 keeps the roles themselves
-- for the same reason), so rolling one database back must not lift the caps of the
-- others. To lift them by hand: ALTER ROLE <role> RESET statement_timeout; ALTER ROLE
-- <role> RESET idle_in_transaction_session_timeout; for anon, customer, reviewer,
-- project_admin and analyst.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX IF EXISTS events.events_actor_ids_idx;
