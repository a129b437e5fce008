-- Legal holds (migration 0028): a project, a source of it, and/or a time range that
-- retention must not touch and erasure must refuse. Set and lifted by the project's
-- project_admin (api.set_legal_hold) or an operator (`secinf hold`), always with a reason
-- and an audit row. A lifted hold stays as the record. See docs/operations.md ("Legal hold").

-- ======================================================================= what is held
-- The time ranges of a source (of project p) under an active hold: a hold of the whole
-- project or of that source, its from/to bounds open where NULL. Empty: nothing held.
-- (p_source NULL: the project's holds that name no source.)
CREATE OR REPLACE FUNCTION records.held_ranges(p_project uuid, p_source bigint)
RETURNS tstzrange[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(array_agg(tstzrange(h.from_ts, h.to_ts, '[)') ORDER BY h.hold_id), '{}')
  FROM records.holds h
  WHERE h.lifted_at IS NULL AND h.project_id = p_project
    AND (h.source_id IS NULL OR h.source_id = p_source)
$$;

-- The first active hold of project p that covers any of [p_from, p_to] of the source
-- (p_source NULL: of any source; p_from/p_to NULL: any time), or NULL.
CREATE OR REPLACE FUNCTION records.hold_over(p_project uuid, p_source bigint,
                                            p_from timestamptz DEFAULT NULL,
                                            p_to timestamptz DEFAULT NULL)
RETURNS records.holds
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT h.*
  FROM records.holds h
  WHERE h.lifted_at IS NULL AND h.project_id = p_project
    AND (h.source_id IS NULL OR p_source IS NULL OR h.source_id = p_source)
    AND tstzrange(h.from_ts, h.to_ts, '[)') && tstzrange(p_from, p_to, '[]')
  ORDER BY h.hold_id
  LIMIT 1
$$;

-- Whether such a hold exists (retention's row conditions; with no hold in the project,
-- the common case, one index probe).
CREATE OR REPLACE FUNCTION records.is_held(p_project uuid, p_source bigint,
                                          p_from timestamptz, p_to timestamptz)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT (records.hold_over(p_project, p_source, p_from, p_to)).hold_id IS NOT NULL $$;

-- How a hold reads in a message: "legal hold 7 (project acme/plaza, source cam-1, from …)".
CREATE OR REPLACE FUNCTION records.describe_hold(p_hold records.holds) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT format('legal hold %s on %s%s%s%s, set by %s: %s', p_hold.hold_id,
                (SELECT o.slug || '/' || p.slug FROM core.projects p
                 JOIN core.organizations o USING (org_id) WHERE p.project_id = p_hold.project_id),
                (SELECT ', source ' || s.name FROM ingest.sources s
                 WHERE s.source_id = p_hold.source_id),
                ', from ' || to_char(p_hold.from_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                ', to ' || to_char(p_hold.to_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                p_hold.set_by, p_hold.reason)
$$;

-- Raise PT423 (HTTP 423 Locked through PostgREST) if a hold covers the source's range.
CREATE OR REPLACE FUNCTION records.refuse_if_held(p_project uuid, p_source bigint,
                                                 p_from timestamptz, p_to timestamptz,
                                                 p_action text)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_hold records.holds := records.hold_over(p_project, p_source, p_from, p_to);
BEGIN
  IF v_hold.hold_id IS NOT NULL THEN
    RAISE EXCEPTION 'cannot %: the data is under %', p_action, records.describe_hold(v_hold)
      USING ERRCODE = 'PT423',
            HINT = format('A project_admin lifts it with api.lift_legal_hold(%s, reason) or '
                          '`secinf hold lift %s --reason …` once the matter is closed.',
                          v_hold.hold_id, v_hold.hold_id);
  END IF;
END
$$;

-- ======================================================================= setting, lifting
-- A hold on project p: the whole project, or one source (by name), optionally only
-- [p_from, p_to). project_admin of p or an operator. Returns the hold.
CREATE OR REPLACE FUNCTION records.set_hold(p_project uuid, p_source text, p_from timestamptz,
                                           p_to timestamptz, p_reason text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_source bigint;
  v_hold records.holds;
BEGIN
  PERFORM auth.require(p_project, ARRAY['project_admin']);
  IF p_reason IS NULL OR length(btrim(p_reason)) NOT BETWEEN 3 AND 500 THEN
    RAISE EXCEPTION 'say why the data is held (reason, 3-500 characters)'
      USING ERRCODE = '22023', HINT = 'For example the matter or case number.';
  END IF;
  IF p_from IS NOT NULL AND p_to IS NOT NULL AND p_from >= p_to THEN
    RAISE EXCEPTION 'a hold''s range must start before it ends (from % to %)', p_from, p_to
      USING ERRCODE = '22023';
  END IF;
  IF p_source IS NOT NULL THEN
    SELECT s.source_id INTO v_source FROM ingest.sources s
    WHERE s.project_id = p_project AND s.name = p_source;
    IF v_source IS NULL THEN
      RAISE EXCEPTION 'no source "%" in this project', p_source USING ERRCODE = 'P0002',
        HINT = 'api.sources (or `secinf pipeline status`) lists the sources.';
    END IF;
  END IF;
  INSERT INTO records.holds (project_id, source_id, from_ts, to_ts, reason, set_by)
  VALUES (p_project, v_source, p_from, p_to, btrim(p_reason), auth.subject())
  RETURNING * INTO v_hold;
  PERFORM audit.record(p_project, 'legal_hold.set', 'hold ' || v_hold.hold_id,
                       jsonb_build_object('hold_id', v_hold.hold_id, 'source', p_source,
                                          'from', p_from, 'to', p_to,
                                          'reason', v_hold.reason));
  RETURN to_jsonb(v_hold) || jsonb_build_object('source', p_source);
END
$$;

-- Lift an active hold (the hold's project's project_admin, or an operator), with why.
CREATE OR REPLACE FUNCTION records.lift_hold(p_hold bigint, p_reason text,
                                            p_project uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_hold records.holds;
BEGIN
  SELECT h.* INTO v_hold FROM records.holds h
  WHERE h.hold_id = p_hold AND (p_project IS NULL OR h.project_id = p_project)
  FOR UPDATE;
  IF v_hold.hold_id IS NULL OR NOT auth.can_access(v_hold.project_id) THEN
    RAISE EXCEPTION 'no legal hold %', p_hold USING ERRCODE = 'P0002',
      HINT = 'api.legal_holds (or `secinf hold list`) lists them.';
  END IF;
  PERFORM auth.require(v_hold.project_id, ARRAY['project_admin']);
  IF v_hold.lifted_at IS NOT NULL THEN
    RAISE EXCEPTION 'legal hold % was already lifted at % by %', p_hold, v_hold.lifted_at,
      v_hold.lifted_by USING ERRCODE = '55000';
  END IF;
  IF p_reason IS NULL OR length(btrim(p_reason)) NOT BETWEEN 3 AND 500 THEN
    RAISE EXCEPTION 'say why the hold is lifted (reason, 3-500 characters)'
      USING ERRCODE = '22023';
  END IF;
  UPDATE records.holds h
  SET lifted_at = now(), lifted_by = auth.subject(), lift_reason = btrim(p_reason)
  WHERE h.hold_id = p_hold
  RETURNING * INTO v_hold;
  PERFORM audit.record(v_hold.project_id, 'legal_hold.lift', 'hold ' || p_hold,
                       jsonb_build_object('hold_id', p_hold, 'reason', v_hold.lift_reason,
                                          'held_since', v_hold.set_at));
  RETURN to_jsonb(v_hold);
END
$$;

-- Holds of project p (active first), with their source's name.
CREATE OR REPLACE FUNCTION records.list_holds(p_project uuid, p_all boolean DEFAULT false)
RETURNS TABLE (hold_id bigint, source text, from_ts timestamptz, to_ts timestamptz,
               reason text, set_by text, set_at timestamptz, active boolean,
               lifted_by text, lifted_at timestamptz, lift_reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT auth.can_access(p_project) THEN
    RAISE EXCEPTION 'not allowed' USING ERRCODE = '42501';
  END IF;
  RETURN QUERY
  SELECT h.hold_id, s.name, h.from_ts, h.to_ts, h.reason, h.set_by, h.set_at,
         h.lifted_at IS NULL, h.lifted_by, h.lifted_at, h.lift_reason
  FROM records.holds h
  LEFT JOIN ingest.sources s ON s.source_id = h.source_id
  WHERE h.project_id = p_project AND (p_all OR h.lifted_at IS NULL)
  ORDER BY h.lifted_at IS NULL DESC, h.hold_id;
END
$$;
