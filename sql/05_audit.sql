-- The audit log is append-only: rows are written through audit.record() and never changed.

-- Refuse UPDATE and DELETE on audit.log, whoever asks.
CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION 'audit.log is append-only (% refused)', tg_op USING ERRCODE = '42501';
END
$$;

DROP TRIGGER IF EXISTS audit_log_append_only ON audit.log;
CREATE TRIGGER audit_log_append_only
  BEFORE UPDATE OR DELETE ON audit.log
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit.log;
CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON audit.log
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- Append one entry, attributed to the caller.
CREATE OR REPLACE FUNCTION audit.record(
  p_project uuid, p_action text, p_target text, p_details jsonb DEFAULT '{}'
) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO audit.log (project_id, actor, action, target, details)
  VALUES (p_project, auth.subject(), p_action, p_target, coalesce(p_details, '{}'))
$$;
