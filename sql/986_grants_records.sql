-- Grants for the records schema (0028; sql/770-790_records_*.sql, sql/930_records_api.sql).
-- Nobody writes its tables directly: holds, retention settings, subject links, erasures
-- and tombstones change only through the owner's SECURITY DEFINER functions, which check
-- the caller's role and write the audit row. The pipeline role runs retention (pg_cron)
-- and the erase_subject / expire_dataset_files jobs.

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA records FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE records.run_retention(integer, jsonb, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION api.retention(uuid), api.set_retention(text, integer, text, boolean, uuid),
  api.retention_runs(integer, uuid), api.legal_holds(boolean, uuid),
  api.set_legal_hold(text, text, timestamptz, timestamptz, uuid),
  api.lift_legal_hold(bigint, text, uuid), api.link_subjects(jsonb, uuid),
  api.erase_subject(text, text, text, text, uuid), api.tombstones(integer, uuid) FROM PUBLIC;

GRANT USAGE ON SCHEMA records TO customer, reviewer, analyst, project_admin, pipeline;

-- ---------------------------------------------------------------- reading
-- api.datasets (security_invoker) shows whether a version was superseded or expired.
GRANT SELECT ON records.superseded_versions, records.expired_versions
  TO customer, reviewer, analyst, project_admin, pipeline;

-- ---------------------------------------------------------------- the API
GRANT EXECUTE ON FUNCTION api.retention(uuid) TO customer, analyst, project_admin;
GRANT EXECUTE ON FUNCTION api.set_retention(text, integer, text, boolean, uuid),
  api.retention_runs(integer, uuid), api.legal_holds(boolean, uuid),
  api.set_legal_hold(text, text, timestamptz, timestamptz, uuid),
  api.lift_legal_hold(bigint, text, uuid), api.link_subjects(jsonb, uuid),
  api.erase_subject(text, text, text, text, uuid), api.tombstones(integer, uuid)
  TO project_admin;

-- ---------------------------------------------------------------- the workers
-- Retention under pg_cron (CALL records.run_retention(), each unit a SECURITY DEFINER call
-- that works out its own cut-offs and holds from the settings: the caller names a chunk or
-- a table and a project, never what to delete; a later 'now' is an administrator's).
GRANT EXECUTE ON PROCEDURE records.run_retention(integer, jsonb, timestamptz) TO pipeline;
GRANT EXECUTE ON FUNCTION records.retention_begin(text), records.retention_finish(bigint),
  records.retention_record(bigint, uuid, text, text, text, timestamptz, bigint, bigint,
                           double precision, jsonb),
  records.expiring_chunks(timestamptz),
  records.retention_chunk(bigint, regclass, timestamptz),
  records.retention_chunk_batch(regclass, bigint, timestamptz, integer),
  records.retention_units(timestamptz),
  records.retention_table_batch(regclass, uuid, timestamptz, integer),
  records.cutoff(uuid, text, timestamptz), records.expire_datasets(bigint, uuid, timestamptz),
  records.drop_audit_months(bigint, timestamptz), records.drop_old_tombstones()
  TO pipeline;
-- The erasure and dataset-expiry jobs (workers/records/).
GRANT EXECUTE ON FUNCTION records.erase_step(bigint, integer) TO pipeline;
GRANT SELECT ON records.tombstones, records.retention_runs, records.retention_steps
  TO pipeline;
GRANT UPDATE (objects_deleted_at) ON records.expired_versions TO pipeline;
