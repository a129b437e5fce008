-- The project an api write or read is about, from what the caller named and the projects
-- the caller belongs to (auth.project_ids, auth.require: sql/000_auth.sql). Used by the
-- ingest, jobs and files endpoints (auth.target_project) and by the usage, billing and
-- records functions (auth.caller_project).

-- The project a write lands in: the one named (it must be the caller's), else the caller's
-- only project. Raises 42501 unless the caller holds one of p_roles there.
CREATE OR REPLACE FUNCTION auth.target_project(p_requested uuid, p_roles text[]) RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids uuid[] := auth.project_ids();
  v_project uuid := p_requested;
BEGIN
  IF v_project IS NULL THEN
    IF cardinality(v_ids) > 1 THEN
      RAISE EXCEPTION 'you belong to % projects: say which one with "project_id"',
        cardinality(v_ids) USING ERRCODE = '22023', HINT = 'GET /projects lists them.';
    END IF;
    v_project := v_ids[1];
  END IF;
  PERFORM auth.require(v_project, p_roles);
  RETURN v_project;
END
$$;

-- The project an api call with an optional p_project_id is about (the usage, billing and
-- records functions): the one named (callers of several projects), else the caller's one;
-- the caller needs one of p_roles in it (admins: any, but named), and it must exist.
CREATE OR REPLACE FUNCTION auth.caller_project(p_project uuid, p_roles text[]) RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v uuid := auth.target_project(p_project, p_roles);
BEGIN
  IF v IS NULL THEN
    RAISE EXCEPTION 'no project: name one with p_project_id' USING ERRCODE = '22023',
      HINT = 'GET /projects lists the projects you may read.';
  END IF;
  IF NOT EXISTS (SELECT FROM core.projects p WHERE p.project_id = v) THEN
    RAISE EXCEPTION 'project % does not exist', v USING ERRCODE = 'P0002',
      HINT = 'GET /projects lists the projects you may read.';
  END IF;
  RETURN v;
END
$$;

-- The same for a request document (a batch, a job's parameters): its optional "project_id"
-- names the project; one that is not a uuid is a 22023 naming it.
CREATE OR REPLACE FUNCTION auth.target_project(p_request jsonb, p_roles text[]) RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_requested uuid;
BEGIN
  IF p_request ? 'project_id' THEN
    BEGIN
      v_requested := (p_request ->> 'project_id')::uuid;
    EXCEPTION WHEN invalid_text_representation THEN
      RAISE EXCEPTION 'project_id "%" is not a project id', p_request ->> 'project_id'
        USING ERRCODE = '22023';
    END;
  END IF;
  RETURN auth.target_project(v_requested, p_roles);
END
$$;
