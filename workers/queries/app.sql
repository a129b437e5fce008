-- The review app's queries. Each runs inside workers.appdb's PostgREST-style request (as
-- `authenticator`, SET LOCAL ROLE, claims, api.pre_request()); only `api` objects appear.

-- ---------------------------------------------------------------- the request frame
-- name: set_request :one
-- The request's claims, method and path, as PostgREST sets them per transaction.
SELECT set_config('request.jwt.claims', %(claims)s, true),
       set_config('request.method', %(method)s, true),
       set_config('request.path', %(path)s, true);

-- name: role_settings :many
-- PostgREST's query for the impersonated roles' settings (src/PostgREST/Config/Database.hs,
-- queryRoleSettings): the database-independent settings (`ALTER ROLE … SET`, e.g. the
-- statement_timeout caps of migration 0010) of a role the authenticator is a member of, of
-- user context (or SET-granted); default_transaction_isolation is kept apart. Run as
-- `authenticator`, before SET LOCAL ROLE; each row is applied with set_config(…, true).
WITH role_setting AS (
  SELECT r.rolname, unnest(r.rolconfig) AS setting
  FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
  WHERE m.member = current_user::regrole::oid AND r.rolname = %(role)s
), kv AS (
  SELECT substr(setting, 1, strpos(setting, '=') - 1) AS key,
         lower(substr(setting, strpos(setting, '=') + 1)) AS value
  FROM role_setting
)
SELECT kv.key, kv.value FROM kv
JOIN pg_settings ps ON ps.name = kv.key
  AND (ps.context = 'user' OR has_parameter_privilege(current_user::regrole::oid, ps.name, 'set'))
WHERE kv.key <> 'default_transaction_isolation';

-- name: pre_request :one
-- PostgREST's pre-request hook: liveness checks, metering and rate limits.
SELECT api.pre_request();

-- ---------------------------------------------------------------- sign-in (as anon)
-- name: exchange_key :one
-- Sign in with an API key: the claims it grants (or a refusal).
SELECT api.exchange_key(api_key => %(api_key)s) AS answer;

-- name: login :one
-- Sign in with username and password for a project: the claims granted.
SELECT api.login(username => %(username)s, password => %(password)s,
                 project => %(project)s) AS answer;

-- ---------------------------------------------------------------- the caller
-- name: me :one
-- Who the caller is: role, project and account.
SELECT api.me() AS me;

-- name: projects :many
-- The projects the caller may see.
SELECT project_id, org, slug, name FROM api.projects ORDER BY org, slug;

-- ---------------------------------------------------------------- review queue
-- name: review_queue :many
-- One page of the review queue, filtered and ordered, with a keyset cursor.
SELECT candidate_id, source_id, source_name, type, actors, zone, route, trigger,
       start_ts, end_ts, rule_score, model_score, score, status, cursor
FROM api.review_queue(
  p_types => %(types)s::text[], p_source_ids => %(source_ids)s::bigint[],
  p_min_score => %(min_score)s::float8, p_max_score => %(max_score)s::float8,
  p_statuses => %(statuses)s::text[], p_from => %(from)s::timestamptz,
  p_to => %(to)s::timestamptz, p_order => %(order)s::text, p_after => %(after)s::text,
  p_limit => %(limit)s::int);

-- name: review_counts :many
-- How many candidates the review queue's filters match, per status.
SELECT api.review_counts(
  p_types => %(types)s::text[], p_source_ids => %(source_ids)s::bigint[],
  p_min_score => %(min_score)s::float8, p_max_score => %(max_score)s::float8,
  p_statuses => %(statuses)s::text[], p_from => %(from)s::timestamptz,
  p_to => %(to)s::timestamptz) AS counts;

-- name: review_reasons :many
-- The reject reasons a reviewer may pick, in display order.
SELECT code, label FROM api.review_reasons ORDER BY position;

-- ---------------------------------------------------------------- one candidate
-- name: candidate_detail :one
-- One candidate with its tracks and context, as jsonb.
SELECT api.candidate_detail(p_candidate_id => %(candidate_id)s::bigint,
                            p_context_s => %(context_s)s::float8) AS detail;

-- name: decide :one
-- A review decision on a candidate, as the signed-in reviewer.
SELECT api.decide(p_candidate_id => %(candidate_id)s::bigint, p_decision => %(decision)s::text,
                  p_reason => %(reason)s::text, p_start => %(start)s::timestamptz,
                  p_end => %(end)s::timestamptz, p_note => %(note)s::text) AS result;

-- name: undo_last_decision :one
-- Undo the caller's newest decision.
SELECT api.undo_last_decision() AS result;

-- ---------------------------------------------------------------- second opinions
-- name: second_opinions_for_me :many
-- Candidates waiting for the caller's second opinion.
SELECT * FROM api.second_opinions_for_me(p_limit => %(limit)s::int);

-- name: give_second_opinion :one
-- A second opinion on a candidate another reviewer decided.
SELECT api.give_second_opinion(
  p_candidate_id => %(candidate_id)s::bigint, p_decision => %(decision)s::text,
  p_reason => %(reason)s::text, p_start => %(start)s::timestamptz,
  p_end => %(end)s::timestamptz) AS result;

-- ---------------------------------------------------------------- reviewers
-- name: reviewer_stats :many
-- Each reviewer's decisions, rate, agreement and reputation over [from, to).
SELECT reviewer, decisions, accepts, rejects, per_hour, second_opinions, kappa, mean_iou,
       reputation
FROM api.reviewer_stats(p_from => %(from)s::timestamptz, p_to => %(to)s::timestamptz)
ORDER BY decisions DESC, reviewer;

-- name: agreement_by_type :many
-- Inter-reviewer agreement (kappa, mean IoU) per event type.
SELECT type, pairs, kappa, mean_iou FROM api.agreement_by_type() ORDER BY type;

-- ---------------------------------------------------------------- analytics
-- name: project_metrics :many
-- The caller's project metrics over [from, to) as one jsonb document.
SELECT api.project_metrics(p_from => %(from)s::timestamptz, p_to => %(to)s::timestamptz,
                           p_source_ids => %(source_ids)s::bigint[]) AS metrics;

-- ---------------------------------------------------------------- scoring models
-- The Model page reads the project's scoring tables themselves, through the column grants
-- of sql/989_grants_scoring.sql (never the weights, never the stored windows); RLS keeps
-- other projects' rows and the global models (project_id NULL) out of sight, so none of
-- these queries names a project.

-- name: project_models :many
-- The project's scoring models, newest first, without weights.
SELECT m.model_id, m.version, m.active, m.parent_version, m.metrics, m.training,
       m.activated_at, m.created_by, m.created_at
FROM scoring.models m
ORDER BY m.created_at DESC, m.model_id DESC;

-- name: model_activations :many
-- The project's model activations and rollbacks, newest first.
SELECT a.activation_id, a.activated_at, a.action, a.version, a.previous_version, a.reason,
       a.actor
FROM scoring.activations a
ORDER BY a.activated_at DESC, a.activation_id DESC;

-- name: example_counts :many
-- Per origin ('review' | 'truth'): valid and invalid examples, and the valid positives.
SELECT e.origin,
       count(*) FILTER (WHERE e.invalid_reason IS NULL) AS valid,
       count(*) FILTER (WHERE e.invalid_reason IS NOT NULL) AS invalid,
       count(*) FILTER (WHERE e.invalid_reason IS NULL AND e.label) AS positives
FROM scoring.examples e
GROUP BY e.origin
ORDER BY e.origin;

-- name: example_invalid_reasons :many
-- Why training examples were invalidated, per reason and origin.
SELECT e.invalid_reason AS reason, e.origin, count(*) AS examples,
       max(e.invalidated_at) AS latest
FROM scoring.examples e
WHERE e.invalid_reason IS NOT NULL
GROUP BY e.invalid_reason, e.origin
ORDER BY examples DESC, reason, origin;

-- name: blind_candidates :one
-- Candidates the caller judges blind (a second opinion still open, first decided by someone
-- else), as every review function decides it (review.blind_candidates): the page hides
-- their labels.
SELECT unnest(review.blind_candidates()) AS candidate_id;
