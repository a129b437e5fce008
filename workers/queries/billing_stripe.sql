-- Queries of Stripe's side of billing (workers/billing; sql/260_billing_stripe.sql).

-- name: apply_stripe_event :one
-- As `pipeline` (the file service's webhook), after the signature was verified.
SELECT billing.apply_stripe_event(%(event)s) AS outcome;

-- name: verify_token :one
-- As `pipeline`: the claims of an HS256 API token signed with the active secret, or PT401.
SELECT billing.verify_token(%(token)s) AS claims;

-- name: as_caller :one
-- As `authenticator`, in the caller's transaction, as PostgREST runs a request: the role
-- was SET LOCAL before; the claims, then api.pre_request.
SELECT set_config('request.jwt.claims', %(claims)s, true), api.pre_request();

-- name: checkout_context :one
-- What a Stripe checkout for the plan needs, as the caller.
SELECT billing.checkout_context(%(plan)s) AS context;

-- name: checkout_created :one
-- Record the Stripe checkout session created for the plan.
SELECT billing.checkout_created(%(plan)s, %(session_id)s);

-- name: pending_usage_reports :many
-- As `pipeline` (the report_usage job): its project's pending reports, oldest first.
SELECT identifier, metric, hour, amount, stripe_customer_id, attempts
FROM billing.pending_usage_reports(%(job_id)s, %(limit)s);

-- name: record_usage_report :one
-- Fenced (jobs.fence): the attempt must still hold the job's lease.
SELECT billing.record_usage_report(%(job_id)s, %(attempt)s, %(identifier)s, %(state)s,
                                   %(error)s) AS state;
