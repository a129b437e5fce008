-- Usage against quota and quota overrides for `secinf usage` and `secinf quotas`
-- (workers/usage.py). Reads go through the api functions (sql/270_api_billing.sql), so the
-- period's validation and the quota's arithmetic are the API's; changes go through
-- billing.set_quota (administrators only, audited).

-- name: usage :many
-- Usage against quota per metric for the period.
SELECT metric, unit, period, period_start, resets_at, used, quota, quota_source,
       used_fraction
FROM api.usage(%(period)s, %(project_id)s);

-- name: usage_hourly :many
-- Hourly usage of one metric of the project over [from, to).
SELECT hour, amount
FROM api.usage_hourly(%(metric)s, %(from)s, %(to)s, %(project_id)s);

-- name: quotas :many
-- Per metric: the plan's quota, the project's own (override) and the one in force.
SELECT m.metric, m.unit, m.period, o.plan_id AS plan, pq.quota AS plan_quota,
       (pq.plan_id IS NOT NULL) AS plan_has_quota,
       (qo.project_id IS NOT NULL) AS overridden, qo.quota AS override_quota,
       qo.set_by, qo.set_at, qo.reason, q.quota, q.source AS quota_source
FROM core.projects p
JOIN core.organizations o ON o.org_id = p.org_id
CROSS JOIN billing.metrics m
LEFT JOIN billing.plan_quotas pq ON pq.plan_id = o.plan_id AND pq.metric = m.metric
LEFT JOIN billing.quota_overrides qo ON qo.project_id = p.project_id AND qo.metric = m.metric
CROSS JOIN LATERAL billing.quota(p.project_id, m.metric) q
WHERE p.project_id = %(project_id)s
ORDER BY m.metric;

-- name: metrics :many
-- The metered metrics and their units.
SELECT metric, unit, period, description FROM billing.metrics ORDER BY metric;

-- name: set_quota :many
-- Set (or clear) the project's quota for a metric; the quota now.
SELECT billing.set_quota(%(project_id)s, %(metric)s, %(quota)s, %(reason)s, %(clear)s)
  AS quota;
