-- Reviewer statistics: throughput, agreement between first and second opinions (Cohen's
-- kappa on accept/reject, mean temporal IoU of spans both accepted) and reputation, per
-- reviewer and per event type. SECURITY INVOKER: RLS scopes every row to the caller's
-- projects. Formulas: docs/review.md.

CREATE OR REPLACE FUNCTION api.reviewer_stats(p_from timestamptz DEFAULT NULL,
                                              p_to timestamptz DEFAULT NULL)
RETURNS TABLE (reviewer text, decisions bigint, accepts bigint, rejects bigint,
               per_hour double precision, second_opinions bigint, kappa double precision,
               mean_iou double precision, reputation double precision)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH made AS (  -- decisions not undone, in the window
    SELECT d.reviewer, d.kind, d.opinion, d.decided_at,
           d.decided_at - lag(d.decided_at) OVER (PARTITION BY d.reviewer
                                                  ORDER BY d.decided_at, d.decision_id) AS gap
    FROM review.decisions d
    WHERE d.kind IN ('accept', 'reject')
      AND (p_from IS NULL OR d.decided_at >= p_from)
      AND (p_to IS NULL OR d.decided_at < p_to)
      AND NOT EXISTS (SELECT FROM review.decisions u WHERE u.undoes = d.decision_id)
  ), work AS (
    -- Active time: gaps up to 5 minutes count in full; a longer gap (or the first decision)
    -- starts a session and counts 1 minute.
    SELECT m.reviewer, count(*) AS decisions,
           count(*) FILTER (WHERE m.kind = 'accept') AS accepts,
           count(*) FILTER (WHERE m.kind = 'reject') AS rejects,
           sum(CASE WHEN m.gap IS NULL OR m.gap > interval '5 minutes' THEN 60.0
                    ELSE extract(epoch FROM m.gap)::float8 END) AS active_s
    FROM made m GROUP BY m.reviewer
  ), sides AS (   -- each answered pair counts for both its reviewers
    SELECT p.first_reviewer AS reviewer, false AS as_second, p.first_kind, p.second_kind, p.iou
    FROM review.pairs(p_from, p_to) p
    UNION ALL
    SELECT p.second_reviewer, true, p.first_kind, p.second_kind, p.iou
    FROM review.pairs(p_from, p_to) p
  ), agreement AS (
    SELECT s.reviewer, count(*) FILTER (WHERE s.as_second) AS second_opinions,
           review.kappa(count(*) FILTER (WHERE s.first_kind = 'accept' AND s.second_kind = 'accept'),
                        count(*) FILTER (WHERE s.first_kind = 'accept' AND s.second_kind = 'reject'),
                        count(*) FILTER (WHERE s.first_kind = 'reject' AND s.second_kind = 'accept'),
                        count(*) FILTER (WHERE s.first_kind = 'reject' AND s.second_kind = 'reject'))
             AS kappa,
           avg(s.iou) AS mean_iou
    FROM sides s GROUP BY s.reviewer
  ), names AS (
    SELECT w.reviewer FROM work w UNION SELECT a.reviewer FROM agreement a
  )
  SELECT n.reviewer, coalesce(w.decisions, 0), coalesce(w.accepts, 0), coalesce(w.rejects, 0),
         CASE WHEN w.active_s > 0 THEN w.decisions / (w.active_s / 3600.0) END,
         coalesce(a.second_opinions, 0), a.kappa, a.mean_iou,
         coalesce(r.reputation, 0.5)
  FROM names n
  LEFT JOIN work w ON w.reviewer = n.reviewer
  LEFT JOIN agreement a ON a.reviewer = n.reviewer
  LEFT JOIN review.reputations() r ON r.reviewer = n.reviewer
  ORDER BY coalesce(w.decisions, 0) DESC, n.reviewer
$$;
COMMENT ON FUNCTION api.reviewer_stats(timestamptz, timestamptz) IS
  'Per reviewer of the caller''s project, over decisions made in [p_from, p_to): decisions '
  '(not undone), accepts, rejects, per_hour (decisions per active hour), second_opinions '
  'given, Cohen''s kappa (first vs second opinion, pairs the reviewer took part in), '
  'mean_iou (spans both accepted) and reputation (all-time smoothed agreement, the weight of '
  'second-opinion routing; 0.5 without pairs). See docs/review.md.';

CREATE OR REPLACE FUNCTION api.agreement_by_type()
RETURNS TABLE (type text, pairs bigint, kappa double precision, mean_iou double precision)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT p.type, count(*),
         review.kappa(count(*) FILTER (WHERE p.first_kind = 'accept' AND p.second_kind = 'accept'),
                      count(*) FILTER (WHERE p.first_kind = 'accept' AND p.second_kind = 'reject'),
                      count(*) FILTER (WHERE p.first_kind = 'reject' AND p.second_kind = 'accept'),
                      count(*) FILTER (WHERE p.first_kind = 'reject' AND p.second_kind = 'reject')),
         avg(p.iou)
  FROM review.pairs() p
  GROUP BY p.type
  ORDER BY p.type
$$;
COMMENT ON FUNCTION api.agreement_by_type() IS
  'Agreement between first and second opinions per event type in the caller''s project: '
  'answered pairs, Cohen''s kappa on accept/reject, mean temporal IoU of spans both accepted.';
