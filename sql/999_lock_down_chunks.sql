-- Runs after every grants file: strip RLS-bound roles' privileges that a GRANT on a
-- hypertable copied onto its existing chunks (see 020_hypertable_access.sql).
SELECT auth.lock_down_chunks();
