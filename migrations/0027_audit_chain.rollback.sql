-- 0027 rollback: the audit log is one plain append-only table again, without the chain or
-- the address (their values are lost; every row and id stays).
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '30min';

ALTER TABLE audit.log RENAME TO log_chained;
ALTER INDEX audit.log_project_at_idx RENAME TO log_chained_project_at_idx;
CREATE TABLE audit.log (
  audit_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  project_id uuid,
  actor      text NOT NULL,
  action     text NOT NULL,
  target     text,
  details    jsonb NOT NULL DEFAULT '{}'
);
INSERT INTO audit.log (audit_id, at, project_id, actor, action, target, details)
OVERRIDING SYSTEM VALUE
SELECT audit_id, at, project_id, actor, action, target, details
FROM audit.log_chained ORDER BY audit_id;
SELECT setval(pg_get_serial_sequence('audit.log', 'audit_id'),
              greatest((SELECT max(audit_id) FROM audit.log_chained), 1),
              (SELECT max(audit_id) FROM audit.log_chained) IS NOT NULL);
DROP TABLE audit.log_chained;
CREATE INDEX audit_log_project_at_idx ON audit.log (project_id, at);
DROP FUNCTION IF EXISTS audit.seal(integer);
DROP FUNCTION IF EXISTS audit.verify_chain();
DROP FUNCTION IF EXISTS audit.ensure_partitions(integer);
DROP FUNCTION IF EXISTS audit.row_hash(bytea, bigint, bigint, timestamptz, uuid, text, text,
                                       text, jsonb, text);
DROP FUNCTION IF EXISTS audit.on_insert();
RESET ROLE;
