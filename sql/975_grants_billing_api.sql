-- Grants for usage, quotas, invoices and the subscription through the API
-- (sql/270_api_billing.sql). Use against quota is for the people who run or pay for a
-- project (customers, analysts, project admins); invoices and the subscription are the
-- organization's money (customers and project admins). Reviewers get none of them.
-- The functions are SECURITY DEFINER and check the caller's project; the views are
-- security_invoker over billing's organization tables, whose RLS (900_policies.sql) keeps
-- each caller to its own organization's rows.

REVOKE EXECUTE ON FUNCTION billing.period_moment(text), billing.require_metric(text)
  FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION api.usage(text, uuid),
  api.usage_hourly(text, timestamptz, timestamptz, uuid) FROM PUBLIC;

-- ---------------------------------------------------------------- usage against quota
GRANT EXECUTE ON FUNCTION api.usage(text, uuid),
  api.usage_hourly(text, timestamptz, timestamptz, uuid)
  TO customer, analyst, project_admin;

-- ---------------------------------------------------------------- invoices, subscription
GRANT SELECT ON billing.invoices, billing.subscriptions TO customer, project_admin;
GRANT SELECT ON api.invoices, api.subscription TO customer, project_admin;
