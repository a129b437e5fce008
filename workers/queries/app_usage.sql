-- The calls of the review app's Usage page (streamlit_app/applib/usage_view.py). Each runs
-- inside workers.appdb's PostgREST-style request (as `authenticator`, SET LOCAL ROLE,
-- claims, api.pre_request()); only `api` objects appear.

-- name: access :one
-- What the caller's role may read (sql/975_grants_billing_api.sql): the database's grants.
SELECT has_function_privilege('api.usage(text, uuid)', 'EXECUTE') AS usage,
       has_table_privilege('api.invoices', 'SELECT')
         AND has_table_privilege('api.subscription', 'SELECT') AS invoices;

-- name: usage :many
-- Use against quota per metric in the current period or a named one (YYYY-MM, YYYY-MM-DD).
SELECT metric, unit, period, period_start, resets_at, used, quota, quota_source,
       used_fraction
FROM api.usage(%(period)s);

-- name: usage_hourly :many
-- The caller's hourly usage of one metric over [from, to).
SELECT hour, amount FROM api.usage_hourly(%(metric)s, %(from)s, %(to)s);

-- name: invoices :many
-- The organization's invoices, newest period first (the last two years at most).
SELECT invoice_id, number, status, currency, amount_due, amount_paid, period_start,
       period_end, hosted_invoice_url
FROM api.invoices
ORDER BY period_end DESC NULLS LAST, invoice_id DESC
LIMIT 24;

-- name: subscription :many
-- The caller's organization's billing subscription.
SELECT org, plan_id, subscription_id, status, subscribed_plan_id, current_period_start,
       current_period_end, cancel_at_period_end
FROM api.subscription
ORDER BY org;
