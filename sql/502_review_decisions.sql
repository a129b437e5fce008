-- Reviewers' decisions: accept (with the proposed or an adjusted span), reject (with a
-- reason), undo one's last decision, and second opinions.
--
-- review.decisions is append-only: every decision and every undo is a row. The live first
-- decision of a candidate is its row in review.current, whose primary key settles races:
-- of two reviewers deciding at once exactly one inserts it, the other is told who won
-- (SQLSTATE PT409) and leaves nothing behind. An accept makes (or turns into) the
-- candidate's one events.events row, source 'human'. These functions are SECURITY DEFINER:
-- they check the caller themselves (project through auth.project_ids(), role through
-- auth.require) and act as the owner. See docs/review.md.

-- ---------------------------------------------------------------- checks
-- The candidate, if the caller may act on it with one of p_roles; locked against other
-- deciders and events.promote when p_lock. Another project's candidate reads as missing.
CREATE OR REPLACE FUNCTION review.candidate_for(p_candidate bigint, p_roles text[],
                                                p_lock boolean DEFAULT false)
RETURNS candidates.candidates
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v candidates.candidates;
BEGIN
  IF p_lock THEN
    SELECT * INTO v FROM candidates.candidates c WHERE c.candidate_id = p_candidate
    FOR NO KEY UPDATE;
  ELSE
    SELECT * INTO v FROM candidates.candidates c WHERE c.candidate_id = p_candidate;
  END IF;
  IF v.candidate_id IS NULL OR NOT auth.can_access(v.project_id) THEN
    RAISE EXCEPTION 'no candidate % in your project', p_candidate USING ERRCODE = 'P0002',
      HINT = 'Pick a candidate from the review queue.';
  END IF;
  PERFORM auth.require(v.project_id, p_roles);
  RETURN v;
END
$$;

-- Refuse a decision word or rejection reason that is not allowed.
CREATE OR REPLACE FUNCTION review.check_decision(p_decision text, p_reason text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_decision IS NULL OR p_decision NOT IN ('accept', 'reject') THEN
    RAISE EXCEPTION 'unknown decision "%"', p_decision USING ERRCODE = '22023',
      HINT = 'Use accept or reject.';
  END IF;
  IF p_reason IS NOT NULL AND NOT EXISTS (SELECT FROM review.reasons r WHERE r.code = p_reason)
     OR (p_decision = 'reject' AND p_reason IS NULL) THEN
    RAISE EXCEPTION '%', CASE WHEN p_reason IS NULL THEN 'a rejection needs a reason'
                              ELSE format('unknown rejection reason "%s"', p_reason) END
      USING ERRCODE = '22023',
            HINT = 'Use one of: ' || (SELECT string_agg(r.code, ', ' ORDER BY r.position)
                                      FROM review.reasons r) || ' (api.review_reasons).';
  END IF;
END
$$;

-- The span an accept records: the proposed one, or the adjusted [p_start, p_end] (either
-- end may be left NULL), which must lie within the time all the candidate's actors are
-- tracked.
CREATE OR REPLACE FUNCTION review.accepted_span(c candidates.candidates, p_start timestamptz,
                                                p_end timestamptz, OUT start_ts timestamptz,
                                                OUT end_ts timestamptz, OUT adjusted boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_life record;
BEGIN
  start_ts := coalesce(p_start, c.start_ts);
  end_ts := coalesce(p_end, c.end_ts);
  adjusted := start_ts <> c.start_ts OR end_ts <> c.end_ts;
  IF end_ts < start_ts THEN
    RAISE EXCEPTION 'span end % is before its start %', end_ts, start_ts
      USING ERRCODE = '22023', HINT = 'Give p_start ≤ p_end.';
  END IF;
  IF adjusted THEN
    v_life := review.actors_lifetime(c.source_id, c.actors);
    IF v_life.from_ts IS NULL OR start_ts < v_life.from_ts OR end_ts > v_life.to_ts THEN
      RAISE EXCEPTION 'span [%, %] is outside the time the actors of candidate % are tracked (%)',
        start_ts, end_ts, c.candidate_id,
        coalesce(format('[%s, %s]', v_life.from_ts, v_life.to_ts), 'never together')
        USING ERRCODE = '22023',
              HINT = 'Keep the adjusted span within span_limits of api.candidate_detail.';
    END IF;
  END IF;
END
$$;

-- The PT409 refusal for a candidate someone else decided first.
CREATE OR REPLACE FUNCTION review.refuse_decided(p_candidate bigint) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v review.current;
BEGIN
  -- A blind second reviewer learns nothing of the first decision, not even who made it.
  IF p_candidate = ANY (review.blind_candidates()) THEN
    RAISE EXCEPTION 'candidate % is waiting for a second opinion', p_candidate
      USING ERRCODE = 'PT409',
            HINT = 'Answer it with give_second_opinion (see second_opinions_for_me).';
  END IF;
  SELECT * INTO v FROM review.current r WHERE r.candidate_id = p_candidate;
  RAISE EXCEPTION 'candidate % was already decided by % at %', p_candidate,
    coalesce(v.reviewer, 'another reviewer'),
    coalesce(to_char(v.decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', 'this moment')
    USING ERRCODE = 'PT409',
          HINT = 'Move on to the next candidate; its decider can undo theirs if it was wrong.';
END
$$;

-- ---------------------------------------------------------------- first decisions
CREATE OR REPLACE FUNCTION api.decide(p_candidate_id bigint, p_decision text,
                                      p_reason text DEFAULT NULL,
                                      p_start timestamptz DEFAULT NULL,
                                      p_end timestamptz DEFAULT NULL,
                                      p_note text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_me text;
  c candidates.candidates;
  v_start timestamptz;
  v_end timestamptz;
  v_adjusted boolean := false;
  v_decision bigint;
  v_event bigint;
  v_settings review.settings;
  v_second text;
  v_routed boolean := false;
BEGIN
  -- The row lock orders us after a concurrent decider or promote of the same candidate.
  c := review.candidate_for(p_candidate_id, ARRAY['reviewer', 'project_admin'], true);
  v_me := review.require_person();  -- one person, one reviewer (150_review_identity.sql)
  PERFORM review.check_decision(p_decision, p_reason);
  IF EXISTS (SELECT FROM review.current r WHERE r.candidate_id = c.candidate_id) THEN
    PERFORM review.refuse_decided(c.candidate_id);
  END IF;
  IF p_decision = 'accept' THEN
    SELECT a.start_ts, a.end_ts, a.adjusted INTO v_start, v_end, v_adjusted
    FROM review.accepted_span(c, p_start, p_end) a;
  END IF;

  INSERT INTO review.decisions (project_id, candidate_id, reviewer, opinion, kind, reason, note,
                                start_ts, end_ts, adjusted)
  VALUES (c.project_id, c.candidate_id, v_me, 'first', p_decision, p_reason, p_note,
          v_start, v_end, v_adjusted)
  RETURNING decision_id INTO v_decision;
  -- The primary key decides a race the lock did not (a decider that bypassed it).
  INSERT INTO review.current (candidate_id, project_id, decision_id, reviewer, kind, decided_at)
  VALUES (c.candidate_id, c.project_id, v_decision, v_me, p_decision, now())
  ON CONFLICT (candidate_id) DO NOTHING;
  IF NOT FOUND THEN
    PERFORM review.refuse_decided(c.candidate_id);  -- raises: the decision row goes too
  END IF;

  IF p_decision = 'accept' THEN
    -- A machine event (rule or model) of an auto-accepted candidate becomes the human one.
    INSERT INTO events.events AS e
      (project_id, source_id, candidate_id, type, actors, zone, route, trigger, latency_s,
       start_ts, end_ts, confidence, source, verified_by, decision_id, ontology_id,
       ontology_version, model_version)
    VALUES (c.project_id, c.source_id, c.candidate_id, c.type, c.actors, c.zone, c.route,
            c.trigger, c.latency_s, v_start, v_end, 1.0, 'human', v_me,
            v_decision, c.ontology_id, c.ontology_version, c.model_version)
    ON CONFLICT (candidate_id) DO UPDATE
      SET start_ts = excluded.start_ts, end_ts = excluded.end_ts, confidence = 1.0,
          source = 'human', verified_by = excluded.verified_by,
          decision_id = excluded.decision_id, updated_at = now()
    RETURNING e.event_id INTO v_event;
    -- Metering (sql/240_billing_usage.sql): one verified event per accepting decision.
    PERFORM billing.count(c.project_id, 'events_verified', 1, 'decision:' || v_decision);
  ELSE
    DELETE FROM events.events e WHERE e.candidate_id = c.candidate_id;
  END IF;
  UPDATE candidates.candidates
  SET status = CASE p_decision WHEN 'accept' THEN 'accepted' ELSE 'rejected' END,
      updated_at = now()
  WHERE candidate_id = c.candidate_id;

  -- A fixed share of first decisions goes to a second reviewer.
  v_settings := review.project_settings(c.project_id);
  IF review.routed_to_second_opinion(c.candidate_id, v_settings.second_opinion_share) THEN
    v_second := review.pick_second_reviewer(c.project_id, v_me);
    INSERT INTO review.second_opinions (candidate_id, project_id, first_decision_id,
                                        first_reviewer, assigned_to)
    VALUES (c.candidate_id, c.project_id, v_decision, v_me, v_second);
    v_routed := true;
  END IF;

  PERFORM audit.record(c.project_id, 'review.' || p_decision, 'candidate:' || c.candidate_id,
                       jsonb_strip_nulls(jsonb_build_object(
                         'decision_id', v_decision, 'event_id', v_event, 'reason', p_reason,
                         'start_ts', v_start, 'end_ts', v_end,
                         'adjusted', v_adjusted, 'second_opinion_from',
                         CASE WHEN v_routed THEN coalesce(v_second, '(anyone)') END)));
  RETURN jsonb_build_object('decision_id', v_decision, 'event_id', v_event,
                            'second_opinion', v_routed, 'candidate_id', c.candidate_id,
                            'status', CASE p_decision WHEN 'accept' THEN 'accepted'
                                                      ELSE 'rejected' END);
END
$$;
COMMENT ON FUNCTION api.decide(bigint, text, text, timestamptz, timestamptz, text) IS
  'Decide a candidate: accept (optionally with an adjusted span p_start..p_end inside the '
  'time its actors are tracked) or reject (p_reason from review_reasons). An accept creates '
  'the candidate''s verified event (source human); a reject removes a machine event. The '
  'first decision wins: a candidate already decided answers 409 with who decided it and '
  'when. Returns {decision_id, event_id, second_opinion, candidate_id, status}.';

-- ---------------------------------------------------------------- undo
CREATE OR REPLACE FUNCTION api.undo_last_decision() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_me text := review.require_person();
  d review.decisions;
  c candidates.candidates;
  v_undo bigint;
BEGIN
  -- The caller's newest decision that is still live: the current first decision of its
  -- candidate, or the answer of an open pair.
  SELECT * INTO d FROM review.decisions x
  WHERE x.reviewer = v_me AND x.kind IN ('accept', 'reject')
    AND x.project_id = ANY (auth.project_ids())
    AND (EXISTS (SELECT FROM review.current r WHERE r.decision_id = x.decision_id)
         OR EXISTS (SELECT FROM review.second_opinions s WHERE s.decision_id = x.decision_id))
  ORDER BY x.decided_at DESC, x.decision_id DESC
  LIMIT 1;
  IF d.decision_id IS NULL THEN
    RAISE EXCEPTION 'you have no decision to undo' USING ERRCODE = 'P0002',
      HINT = 'Only your own live decisions can be undone, newest first.';
  END IF;
  c := review.candidate_for(d.candidate_id, ARRAY['reviewer', 'project_admin'], true);

  INSERT INTO review.decisions (project_id, candidate_id, reviewer, opinion, kind, undoes)
  VALUES (d.project_id, d.candidate_id, v_me, d.opinion, 'undo', d.decision_id)
  RETURNING decision_id INTO v_undo;
  IF d.opinion = 'first' THEN
    DELETE FROM review.second_opinions s WHERE s.first_decision_id = d.decision_id;
    DELETE FROM events.events e WHERE e.decision_id = d.decision_id;
    DELETE FROM review.current r WHERE r.decision_id = d.decision_id;
    UPDATE candidates.candidates
    SET status = CASE WHEN model_score IS NULL THEN 'new' ELSE 'scored' END, updated_at = now()
    WHERE candidate_id = d.candidate_id;
  ELSE
    UPDATE review.second_opinions SET decision_id = NULL, answered_at = NULL
    WHERE decision_id = d.decision_id;
  END IF;
  PERFORM audit.record(d.project_id, 'review.undo', 'candidate:' || d.candidate_id,
                       jsonb_build_object('undone', d.decision_id, 'undo_id', v_undo,
                                          'kind', d.kind, 'opinion', d.opinion));
  RETURN jsonb_build_object('undo_id', v_undo, 'undone_decision_id', d.decision_id,
                            'candidate_id', d.candidate_id, 'kind', d.kind,
                            'opinion', d.opinion);
END
$$;
COMMENT ON FUNCTION api.undo_last_decision() IS
  'Undo the caller''s newest live decision (first decision or second opinion): its event '
  'goes, the candidate returns to the queue (or the second opinion reopens). The undo is '
  'recorded as a decision of its own. Returns {undo_id, undone_decision_id, candidate_id, '
  'kind, opinion}.';

-- ---------------------------------------------------------------- second opinions
CREATE OR REPLACE FUNCTION api.second_opinions_for_me(p_limit integer DEFAULT 50)
RETURNS TABLE (candidate_id bigint, source_id bigint, source_name text, type text,
               actors jsonb, zone text, route text, trigger text, start_ts timestamptz,
               end_ts timestamptz, rule_score double precision, model_score double precision,
               score double precision, requested_at timestamptz, assigned_to text)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.candidate_id, c.source_id, s.name, c.type, c.actors, c.zone, c.route, c.trigger,
         c.start_ts, c.end_ts, c.rule_score, c.model_score,
         coalesce(c.model_score, c.rule_score), so.requested_at, so.assigned_to
  FROM review.second_opinions so
  JOIN candidates.candidates c ON c.candidate_id = so.candidate_id
  JOIN ingest.sources s ON s.source_id = c.source_id
  WHERE so.decision_id IS NULL
    AND so.first_reviewer IS DISTINCT FROM review.person()
    AND (so.assigned_to = review.person() OR so.assigned_to IS NULL)
  ORDER BY so.assigned_to IS NULL, so.requested_at, so.candidate_id
  LIMIT least(greatest(coalesce(p_limit, 50), 1), 200)
$$;
COMMENT ON FUNCTION api.second_opinions_for_me(integer) IS
  'Candidates waiting for the caller''s second opinion: assigned to them, then open to anyone '
  'but their first reviewer; oldest request first. The first decision is not shown.';

CREATE OR REPLACE FUNCTION api.give_second_opinion(p_candidate_id bigint, p_decision text,
                                                   p_reason text DEFAULT NULL,
                                                   p_start timestamptz DEFAULT NULL,
                                                   p_end timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_me text;
  c candidates.candidates;
  so review.second_opinions;
  v_start timestamptz;
  v_end timestamptz;
  v_adjusted boolean := false;
  v_decision bigint;
BEGIN
  c := review.candidate_for(p_candidate_id, ARRAY['reviewer', 'project_admin'], false);
  v_me := review.require_person();  -- a key and an account of one person are one reviewer
  PERFORM review.check_decision(p_decision, p_reason);
  SELECT * INTO so FROM review.second_opinions s WHERE s.candidate_id = c.candidate_id
  FOR UPDATE;
  IF so.candidate_id IS NULL THEN
    RAISE EXCEPTION 'candidate % has no open second-opinion request', c.candidate_id
      USING ERRCODE = 'P0002', HINT = 'See api.second_opinions_for_me.';
  ELSIF so.decision_id IS NOT NULL THEN
    RAISE EXCEPTION 'the second opinion on candidate % was already given by % at %',
      c.candidate_id, so.assigned_to,
      to_char(so.answered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
      USING ERRCODE = 'PT409';
  ELSIF so.first_reviewer = v_me THEN
    RAISE EXCEPTION 'you made the first decision on candidate %: a second opinion must come '
                    'from someone else', c.candidate_id USING ERRCODE = '42501';
  ELSIF so.assigned_to IS NOT NULL AND so.assigned_to <> v_me THEN
    RAISE EXCEPTION 'the second opinion on candidate % is assigned to %', c.candidate_id,
      so.assigned_to USING ERRCODE = '42501';
  END IF;
  IF p_decision = 'accept' THEN
    SELECT a.start_ts, a.end_ts, a.adjusted INTO v_start, v_end, v_adjusted
    FROM review.accepted_span(c, p_start, p_end) a;
  END IF;
  INSERT INTO review.decisions (project_id, candidate_id, reviewer, opinion, kind, reason,
                                start_ts, end_ts, adjusted)
  VALUES (c.project_id, c.candidate_id, v_me, 'second', p_decision, p_reason,
          v_start, v_end, v_adjusted)
  RETURNING decision_id INTO v_decision;
  UPDATE review.second_opinions
  SET decision_id = v_decision, answered_at = now(), assigned_to = v_me
  WHERE candidate_id = c.candidate_id;
  PERFORM audit.record(c.project_id, 'review.second_opinion', 'candidate:' || c.candidate_id,
                       jsonb_strip_nulls(jsonb_build_object(
                         'decision_id', v_decision, 'kind', p_decision, 'reason', p_reason,
                         'start_ts', v_start, 'end_ts', v_end)));
  RETURN jsonb_build_object('decision_id', v_decision, 'candidate_id', c.candidate_id,
                            'kind', p_decision);
END
$$;
COMMENT ON FUNCTION api.give_second_opinion(bigint, text, text, timestamptz, timestamptz) IS
  'Answer a second-opinion request (see second_opinions_for_me): accept, with the span as '
  'proposed or adjusted, or reject with a reason. It is compared with the first decision '
  'for agreement statistics; the event stays as the first decision made it.';
