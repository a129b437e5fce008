-- Review building blocks shared by the queue, the decisions and the statistics: project
-- settings with defaults, the queue's opaque cursor, agreement measures (Cohen's kappa,
-- temporal IoU), reviewer reputation and the weighted draw of a second reviewer.
-- Formulas are documented in docs/review.md.

-- ---------------------------------------------------------------- settings
-- The project's review settings, creating the row with the table's defaults on first use.
CREATE OR REPLACE FUNCTION review.project_settings(p_project uuid) RETURNS review.settings
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v review.settings;
BEGIN
  SELECT * INTO v FROM review.settings s WHERE s.project_id = p_project;
  IF NOT FOUND THEN
    -- The defaults made a row: no setting changed, so no audit row
    -- (audit.record_setting_change, sql/070_audit_settings.sql).
    PERFORM set_config('secinf.settings_defaulted', 'on', true);
    INSERT INTO review.settings (project_id) VALUES (p_project)
    ON CONFLICT (project_id) DO NOTHING;
    PERFORM set_config('secinf.settings_defaulted', 'off', true);
    SELECT * INTO v FROM review.settings s WHERE s.project_id = p_project;
  END IF;
  RETURN v;
END
$$;

-- ---------------------------------------------------------------- cursor
-- Opaque keyset cursor: base64url of 'order|key|candidate_id' (key as Postgres prints it,
-- which reads back exactly: shortest round-trip floats, microsecond timestamps).
CREATE OR REPLACE FUNCTION review.cursor_encode(p_order text, p_key text, p_id bigint)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT rtrim(translate(encode(convert_to(p_order || '|' || p_key || '|' || p_id, 'UTF8'),
                                'base64'), E'+/\n', '-_'), '=')
$$;

-- Decode a cursor made for ordering p_order into its key (text) and candidate id.
CREATE OR REPLACE FUNCTION review.cursor_decode(p_cursor text, p_order text,
                                                OUT key text, OUT candidate_id bigint)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_text text;
  v_parts text[];
BEGIN
  BEGIN
    v_text := convert_from(decode(rpad(translate(p_cursor, '-_', '+/'),
                                       ((length(p_cursor) + 3) / 4) * 4, '='), 'base64'),
                           'UTF8');
    v_parts := string_to_array(v_text, '|');
    IF cardinality(v_parts) <> 3 OR v_parts[3] !~ '^[0-9]+$' THEN
      RAISE EXCEPTION 'malformed';
    END IF;
  EXCEPTION WHEN OTHERS THEN
    RAISE EXCEPTION 'invalid queue cursor "%"', p_cursor USING ERRCODE = '22023',
      HINT = 'Pass a cursor exactly as a previous page returned it, or none for the first page.';
  END;
  IF v_parts[1] IS DISTINCT FROM p_order THEN
    RAISE EXCEPTION 'this cursor belongs to ordering "%", not "%"', v_parts[1], p_order
      USING ERRCODE = '22023', HINT = 'Start again from the first page after changing the order.';
  END IF;
  key := v_parts[2];
  candidate_id := v_parts[3]::bigint;
END
$$;

-- ---------------------------------------------------------------- agreement
-- Cohen's kappa of two raters on accept/reject from the four cells of their 2x2 table
-- (first opinion × second opinion). NULL when undefined (no pairs, or chance agreement 1).
CREATE OR REPLACE FUNCTION review.kappa(aa bigint, ar bigint, ra bigint, rr bigint)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  WITH t AS (SELECT (aa + ar + ra + rr)::float8 AS n)
  SELECT CASE WHEN t.n = 0 THEN NULL
              ELSE (SELECT CASE WHEN pe >= 1 THEN NULL ELSE (po - pe) / (1 - pe) END
                    FROM (SELECT (aa + rr) / t.n AS po,
                                 ((aa + ar) / t.n) * ((aa + ra) / t.n)
                                 + ((rr + ra) / t.n) * ((rr + ar) / t.n) AS pe) x)
         END
  FROM t
$$;

-- Temporal intersection over union of two spans (1 for two equal instants).
CREATE OR REPLACE FUNCTION review.span_iou(s1 timestamptz, e1 timestamptz,
                                           s2 timestamptz, e2 timestamptz)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE
           WHEN s1 IS NULL OR e1 IS NULL OR s2 IS NULL OR e2 IS NULL THEN NULL
           WHEN greatest(e1, e2) = least(s1, s2) THEN 1.0
           ELSE greatest(extract(epoch FROM least(e1, e2) - greatest(s1, s2)), 0)::float8
                / extract(epoch FROM greatest(e1, e2) - least(s1, s2))::float8
         END
$$;

-- Every answered second opinion of the projects, as a pair of live decisions: who decided
-- first and second, what, and the spans. Invoker's rights: RLS scopes the rows.
CREATE OR REPLACE FUNCTION review.pairs(p_from timestamptz DEFAULT NULL,
                                        p_to timestamptz DEFAULT NULL)
RETURNS TABLE (project_id uuid, candidate_id bigint, type text,
               first_reviewer text, first_kind text, second_reviewer text, second_kind text,
               agree boolean, iou double precision, answered_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT so.project_id, so.candidate_id, c.type,
         d1.reviewer, d1.kind, d2.reviewer, d2.kind,
         d1.kind = d2.kind,
         CASE WHEN d1.kind = 'accept' AND d2.kind = 'accept'
              THEN review.span_iou(d1.start_ts, d1.end_ts, d2.start_ts, d2.end_ts) END,
         so.answered_at
  FROM review.second_opinions so
  JOIN review.decisions d1 ON d1.decision_id = so.first_decision_id
  JOIN review.decisions d2 ON d2.decision_id = so.decision_id
  JOIN candidates.candidates c ON c.candidate_id = so.candidate_id
  WHERE so.decision_id IS NOT NULL
    AND (p_from IS NULL OR so.answered_at >= p_from)
    AND (p_to IS NULL OR so.answered_at < p_to)
$$;

-- Reputation of every reviewer who took part in pairs of project p_project (NULL: of every
-- project the caller sees): the smoothed mean
-- agreement (docs/review.md): a pair scores 1 when both rejected, 0.5 + 0.5·IoU when both
-- accepted, 0 when they differ; reputation = (Σ scores + 2) / (pairs + 4), so a newcomer
-- starts at 0.5 and a reviewer's own record takes over as pairs accumulate.
CREATE OR REPLACE FUNCTION review.reputations(p_project uuid DEFAULT NULL)
RETURNS TABLE (reviewer text, pairs bigint, agreement double precision,
               reputation double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  WITH scored AS (
    SELECT p.first_reviewer, p.second_reviewer,
           CASE WHEN NOT p.agree THEN 0.0
                WHEN p.first_kind = 'reject' THEN 1.0
                ELSE 0.5 + 0.5 * coalesce(p.iou, 0) END AS score
    FROM review.pairs() p
    WHERE p_project IS NULL OR p.project_id = p_project
  ), sides AS (
    SELECT first_reviewer AS reviewer, score FROM scored
    UNION ALL
    SELECT second_reviewer, score FROM scored
  )
  SELECT s.reviewer, count(*), avg(s.score), (sum(s.score) + 2.0) / (count(*) + 4.0)
  FROM sides s
  GROUP BY s.reviewer
$$;

-- Draw the reviewer for a second opinion on a decision of p_first in project p_project:
-- among the project's people (memberships of kind 'user' with role reviewer or
-- project_admin, accounts not disabled) other than p_first, with probability proportional
-- to reputation (0.5 for someone without pairs yet). NULL when nobody else is there.
CREATE OR REPLACE FUNCTION review.pick_second_reviewer(p_project uuid, p_first text)
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT m.member
  FROM core.memberships m
  LEFT JOIN core.accounts a ON a.username = m.member
  LEFT JOIN review.reputations(p_project) r ON r.reviewer = m.member
  WHERE m.project_id = p_project AND m.kind = 'user'
    AND m.role IN ('reviewer', 'project_admin') AND m.member <> p_first
    AND a.disabled_at IS NULL
  -- Exponential race: the smallest Exp(rate = weight) draw wins with P = weight / Σ weights.
  ORDER BY -ln(1.0 - random()) / greatest(coalesce(r.reputation, 0.5), 1e-6), m.member
  LIMIT 1
$$;

-- Whether candidate p_candidate falls in the share of first decisions routed to a second
-- opinion: a fixed hash of the id, so the choice is the same however often it is asked.
CREATE OR REPLACE FUNCTION review.routed_to_second_opinion(p_candidate bigint,
                                                           p_share double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT ('x' || substr(md5('secinf-review:' || p_candidate), 1, 8))::bit(32)::bigint
         < p_share * 4294967296.0
$$;

-- ---------------------------------------------------------------- tracks
-- The time both (all) actors of a candidate are tracked: the latest first point and the
-- earliest last point over its actors' tracks (kinematics; raw points where none).
CREATE OR REPLACE FUNCTION review.actors_lifetime(p_source bigint, p_actors jsonb,
                                                  OUT from_ts timestamptz, OUT to_ts timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT max(l.first_ts), min(l.last_ts)
  FROM (SELECT DISTINCT value AS track_id FROM jsonb_each_text(p_actors)) a
  CROSS JOIN LATERAL (
    SELECT coalesce(
             (SELECT k.ts FROM features.kinematics k
              WHERE k.source_id = p_source AND k.track_id = a.track_id ORDER BY k.ts LIMIT 1),
             (SELECT min(t.ts) FROM ingest.track_points t
              WHERE t.source_id = p_source AND t.track_id = a.track_id)) AS first_ts,
           coalesce(
             (SELECT k.ts FROM features.kinematics k
              WHERE k.source_id = p_source AND k.track_id = a.track_id
              ORDER BY k.ts DESC LIMIT 1),
             (SELECT max(t.ts) FROM ingest.track_points t
              WHERE t.source_id = p_source AND t.track_id = a.track_id)) AS last_ts
  ) l
$$;
