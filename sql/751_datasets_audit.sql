-- Every dataset outcome is an audit row (issue 17): a version published, or blocked by its
-- quality gates, whoever moved it (secinf export, a job, an admin's SQL). The trigger sits on
-- the table, so no path around it exists. Downloads of a published version are audited by
-- the file service (sql/760_files.sql).

CREATE OR REPLACE FUNCTION datasets.audit_outcome() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  INSERT INTO audit.log (project_id, actor, action, target, details)
  SELECT NEW.project_id,
         coalesce(NEW.published_by, auth.subject()),
         'dataset.' || CASE NEW.status WHEN 'published' THEN 'publish' ELSE 'block' END,
         NEW.name || '@' || NEW.version,
         jsonb_build_object(
           'version_id', NEW.version_id,
           'manifest_sha256', NEW.manifest_sha256,
           'files', (SELECT count(*) FROM datasets.files f WHERE f.version_id = NEW.version_id),
           'bytes', (SELECT coalesce(sum(f.bytes), 0) FROM datasets.files f
                     WHERE f.version_id = NEW.version_id),
           'failed_gates', (SELECT coalesce(jsonb_agg(r.gate ORDER BY r.gate), '[]')
                            FROM datasets.quality_reports r
                            WHERE r.version_id = NEW.version_id AND NOT r.passed));
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER versions_audit_outcome
  AFTER UPDATE OF status ON datasets.versions
  FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('published', 'blocked'))
  EXECUTE FUNCTION datasets.audit_outcome();
