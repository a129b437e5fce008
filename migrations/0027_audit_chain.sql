-- 0027 · the audit log becomes a hash chain in monthly partitions (issue 19).
--   * audit.log is partitioned by month of `at` (a default partition catches what no month
--     holds); its rows move over with their ids.
--   * Each row gets, when sealed, its place in the chain (chain_seq), the hash of the row
--     before it (prev_hash) and its own (row_hash = sha256 of prev_hash and the row's
--     content). audit.seal() (pg_cron, every minute) seals the rows whose transactions have
--     all ended, in order; audit.verify_chain() finds the first broken link.
--   * `address`: where the actor called from, where known.
-- Nothing may change a row's content or delete it (sql/05_audit.sql). See docs/operations.md
-- ("Audit log").
-- depends: 0026_monitoring
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '30min';

-- The old table steps aside for the partitioned one of the same name (writers reach it by
-- name inside the owner's functions; nothing outside holds its oid), then goes once copied.
-- squawk-ignore renaming-table
ALTER TABLE audit.log RENAME TO log_unchained;
-- squawk-ignore renaming-object
ALTER INDEX audit.audit_log_project_at_idx RENAME TO log_unchained_project_at_idx;

CREATE TABLE audit.log (
  audit_id   bigint GENERATED ALWAYS AS IDENTITY,
  at         timestamptz NOT NULL DEFAULT now(),
  project_id uuid,                       -- NULL for cluster-level actions
  actor      text NOT NULL,              -- JWT sub, or the session's database role
  action     text NOT NULL,              -- e.g. 'api_key.create', 'project.create'
  target     text,
  details    jsonb NOT NULL DEFAULT '{}',
  address    text,                       -- the caller's address, where known
  chain_seq  bigint,                     -- place in the hash chain (NULL: not sealed yet)
  prev_hash  bytea,                      -- the row_hash of chain_seq - 1 (NULL for the first)
  row_hash   bytea,                      -- sha256(prev_hash || content), audit.row_hash()
  PRIMARY KEY (audit_id, at),
  CONSTRAINT log_sealed_whole CHECK ((chain_seq IS NULL) = (row_hash IS NULL))
) PARTITION BY RANGE (at);
CREATE TABLE audit.log_default PARTITION OF audit.log DEFAULT;
COMMENT ON TABLE audit.log IS
  'Append-only audit log, hash-chained (audit.seal, audit.verify_chain), monthly partitions.';

-- Months from the oldest row's to three ahead of now.
DO $$
DECLARE
  m date := date_trunc('month', coalesce((SELECT min(at) FROM audit.log_unchained), now())
                               AT TIME ZONE 'UTC')::date;
BEGIN
  WHILE m <= (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months')::date LOOP
    EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.log FOR VALUES FROM (%L) TO (%L)',
                   'log_' || to_char(m, 'YYYY_MM'), (m::timestamp AT TIME ZONE 'UTC'),
                   ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
    m := (m + interval '1 month')::date;
  END LOOP;
END
$$;

INSERT INTO audit.log (audit_id, at, project_id, actor, action, target, details)
OVERRIDING SYSTEM VALUE
SELECT audit_id, at, project_id, actor, action, target, details
FROM audit.log_unchained ORDER BY audit_id;
SELECT setval(pg_get_serial_sequence('audit.log', 'audit_id'),
              greatest((SELECT max(audit_id) FROM audit.log_unchained), 1),
              (SELECT max(audit_id) FROM audit.log_unchained) IS NOT NULL);
-- squawk-ignore ban-drop-table
DROP TABLE audit.log_unchained;

CREATE INDEX log_project_at_idx ON audit.log (project_id, at);
CREATE INDEX log_chain_idx ON audit.log (chain_seq) WHERE chain_seq IS NOT NULL;
CREATE INDEX log_unsealed_idx ON audit.log (at, audit_id) WHERE chain_seq IS NULL;

RESET ROLE;
