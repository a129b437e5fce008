-- Every change of a project's settings is an audit row (issue 19: "settings changes"),
-- whoever makes it and by whichever path (the CLI, an API function, an operator's SQL): a
-- trigger on the settings tables themselves, so there is no way around it.
--   * pipeline.settings: the pipeline's, rules', scoring's and limits' per-project (and
--     global, project_id NULL) settings, one row per key;
--   * review.settings: second-opinion share and auto-accept thresholds.
-- action 'settings.change', target '<table>:<key>', details {before, after} (NULL before: a
-- new setting; NULL after: one removed). Rows written with no change are not recorded, nor
-- the row of defaults review.project_settings makes on first use.

CREATE OR REPLACE FUNCTION audit.record_setting_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_before jsonb := CASE WHEN tg_op <> 'INSERT' THEN to_jsonb(OLD) - 'updated_at' END;
  v_after jsonb := CASE WHEN tg_op <> 'DELETE' THEN to_jsonb(NEW) - 'updated_at' END;
  v_row jsonb := coalesce(v_after, v_before);
BEGIN
  IF v_before IS NOT DISTINCT FROM v_after
     OR current_setting('secinf.settings_defaulted', true) = 'on' THEN
    RETURN NULL;  -- nothing changed, or a row of defaults made on first use
  END IF;
  INSERT INTO audit.log (project_id, actor, action, target, details)
  VALUES ((v_row ->> 'project_id')::uuid, auth.subject(), 'settings.change',
          tg_table_schema || '.' || tg_table_name || coalesce(':' || (v_row ->> 'key'), ''),
          jsonb_build_object('before', v_before - 'project_id' - 'key',
                             'after', v_after - 'project_id' - 'key'));
  RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION audit.record_setting_change() FROM PUBLIC;

DROP TRIGGER IF EXISTS settings_audited ON pipeline.settings;
CREATE TRIGGER settings_audited
  AFTER INSERT OR UPDATE OR DELETE ON pipeline.settings
  FOR EACH ROW EXECUTE FUNCTION audit.record_setting_change();
DROP TRIGGER IF EXISTS settings_audited ON review.settings;
CREATE TRIGGER settings_audited
  AFTER INSERT OR UPDATE OR DELETE ON review.settings
  FOR EACH ROW EXECUTE FUNCTION audit.record_setting_change();
