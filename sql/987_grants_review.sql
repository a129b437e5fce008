-- Grants for review, events and local accounts (0008, sql/50x_review_*.sql). Capability
-- only; which project's rows a role sees is RLS (900_policies.sql covers review.* and
-- events.events). People write only through the api functions (SECURITY DEFINER, they
-- check the caller); they read decisions, pairs and events of their project directly so
-- the invoker-rights functions (queue, counts, statistics) run under RLS.

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA review, events FROM PUBLIC;

-- ---------------------------------------------------------------- schemas and tables
GRANT USAGE ON SCHEMA review, events TO reviewer, project_admin, analyst, pipeline;
GRANT SELECT ON review.reasons TO reviewer, project_admin, analyst, pipeline;
GRANT SELECT ON review.decisions, review.current, review.second_opinions, review.settings,
                events.events
  TO reviewer, project_admin, pipeline;

-- ---------------------------------------------------------------- identity and blindness
-- Customers read api.events, which asks review.blind_candidates (functions only: no table).
GRANT USAGE ON SCHEMA review TO customer;
GRANT EXECUTE ON FUNCTION review.person(), review.require_person(), review.blind_candidates(),
                          review.blind_filter()
  TO customer, reviewer, analyst, project_admin, pipeline;

-- ---------------------------------------------------------------- sign-in
GRANT EXECUTE ON FUNCTION api.login(text, text, text),
                          core.login_account(text, text, text),
                          core.account_is_live(text)
  TO anon, customer, reviewer, analyst, project_admin;

-- ---------------------------------------------------------------- queue and candidate page
GRANT SELECT ON api.review_reasons TO reviewer, project_admin, analyst;
GRANT EXECUTE ON FUNCTION
  api.review_queue(text[], bigint[], double precision, double precision, text[], timestamptz,
                   timestamptz, text, text, integer),
  api.review_counts(text[], bigint[], double precision, double precision, text[], timestamptz,
                    timestamptz),
  review.queue_sql(text[], bigint[], double precision, double precision, text[], timestamptz,
                   timestamptz, text, text, integer),
  review.queue_key(text), review.queue_statuses(text[]),
  review.queue_filters(text[], bigint[], double precision, double precision, timestamptz,
                       timestamptz),
  review.cursor_encode(text, text, bigint), review.cursor_decode(text, text)
  TO reviewer, project_admin;
GRANT EXECUTE ON FUNCTION api.candidate_detail(bigint, double precision)
  TO reviewer, project_admin, analyst;

-- ---------------------------------------------------------------- decisions
GRANT EXECUTE ON FUNCTION
  api.decide(bigint, text, text, timestamptz, timestamptz, text),
  api.undo_last_decision(),
  api.second_opinions_for_me(integer),
  api.give_second_opinion(bigint, text, text, timestamptz, timestamptz)
  TO reviewer, project_admin;

-- ---------------------------------------------------------------- statistics
GRANT EXECUTE ON FUNCTION
  api.reviewer_stats(timestamptz, timestamptz), api.agreement_by_type(),
  review.pairs(timestamptz, timestamptz), review.reputations(uuid),
  review.kappa(bigint, bigint, bigint, bigint),
  review.span_iou(timestamptz, timestamptz, timestamptz, timestamptz)
  TO reviewer, project_admin, analyst;

-- ---------------------------------------------------------------- auto-accept
GRANT EXECUTE ON FUNCTION events.promote(uuid) TO pipeline;
