-- 0024 · billing (issue 18): metering, quotas, rate limits and the mirror of Stripe.
--   * billing.metrics: what is metered, its unit and the period its quota counts over.
--   * billing.plan_quotas / billing.quota_overrides: a plan's quota per metric and project,
--     and a project's own quota set by an operator (who, when, why).
--   * billing.usage: counters per project, metric and hour, written in the transaction of
--     the work they count; billing.counted makes a count idempotent per unit of work (a
--     replayed batch or a retried job adds 0).
--   * billing.request_counts: API requests counted in the server's shared memory (requests
--     in read-only transactions cannot write), flushed by pg_cron idempotently.
--   * billing.rate_limits: token buckets per plan and scope (key, project).
--   * billing.customers / subscriptions / invoices / stripe_events / usage_reports: the
--     mirror of Stripe's objects and the outbox of usage reports to Stripe.
-- See docs/billing.md.
-- depends: 0023_files_direct_upload
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '5min';

CREATE SCHEMA billing;

-- ======================================================================= metrics
CREATE TABLE billing.metrics (
  metric      text PRIMARY KEY CHECK (metric ~ '^[a-z][a-z_]{1,62}$'),
  unit        text NOT NULL,
  period      text NOT NULL CHECK (period IN ('day', 'month')),   -- a quota's period (UTC)
  description text NOT NULL
);
INSERT INTO billing.metrics VALUES
  ('points_ingested',          'points',     'month', 'Track points stored by ingest (new rows only)'),
  ('bytes_ingested',           'bytes',      'month', 'Bytes of track files and batches ingested'),
  ('source_seconds',           'seconds',    'month', 'Seconds of source time processed by the pipeline'),
  ('candidates_scored',        'candidates', 'month', 'Candidates scored by the model'),
  ('events_verified',          'events',     'month', 'Events verified by a review decision'),
  ('dataset_bytes_downloaded', 'bytes',      'month', 'Bytes of dataset files downloaded'),
  ('api_requests',             'requests',   'day',   'Requests served by the API');

-- ======================================================================= quotas
-- Stripe's price of a plan (checkout sessions and subscriptions name prices, not plans).
-- core.plans holds a handful of rows: the unique index is built at once under the lock.
-- squawk-ignore disallowed-unique-constraint
ALTER TABLE core.plans ADD COLUMN stripe_price_id text UNIQUE;

-- A plan's quota per project and period; NULL: unlimited. A metric without a row is
-- unlimited for that plan.
CREATE TABLE billing.plan_quotas (
  plan_id text NOT NULL REFERENCES core.plans ON UPDATE CASCADE ON DELETE CASCADE,
  metric  text NOT NULL REFERENCES billing.metrics,
  quota   bigint CHECK (quota >= 0),
  PRIMARY KEY (plan_id, metric)
);
-- points and API requests as core.plans had them; the rest sized to the same tier.
INSERT INTO billing.plan_quotas (plan_id, metric, quota)
SELECT p.plan_id, 'points_ingested', p.points_per_month FROM core.plans p
UNION ALL
SELECT p.plan_id, 'api_requests', p.api_requests_per_day FROM core.plans p;
INSERT INTO billing.plan_quotas (plan_id, metric, quota)
SELECT pl.plan_id, q.metric, CASE pl.plan_id WHEN 'free' THEN q.free WHEN 'team' THEN q.team END
FROM core.plans pl
CROSS JOIN (VALUES ('bytes_ingested',           1073741824::bigint,  107374182400::bigint),
                   ('source_seconds',           360000,              36000000),
                   ('candidates_scored',        1000000,             100000000),
                   ('events_verified',          100000,              10000000),
                   ('dataset_bytes_downloaded', 10737418240,         1099511627776))
            AS q (metric, free, team)
WHERE pl.plan_id IN ('free', 'team', 'enterprise');

-- An operator's quota for one project, over the plan's (NULL: unlimited).
CREATE TABLE billing.quota_overrides (
  project_id uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  metric     text NOT NULL REFERENCES billing.metrics,
  quota      bigint CHECK (quota >= 0),
  set_by     text NOT NULL,
  reason     text NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
  set_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, metric)
);

-- ======================================================================= usage
CREATE TABLE billing.usage (
  project_id uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  metric     text NOT NULL REFERENCES billing.metrics,
  hour       timestamptz NOT NULL CHECK (extract(epoch FROM hour)::bigint % 3600 = 0),
  amount     bigint NOT NULL DEFAULT 0 CHECK (amount >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, metric, hour)
);
CREATE INDEX usage_metric_hour_idx ON billing.usage (metric, hour);

-- The units of work already counted: billing.count adds to usage only when its
-- (project, work key, metric) is new here, in the same transaction as the work.
CREATE TABLE billing.counted (
  project_id uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  work_key   text NOT NULL CHECK (length(work_key) BETWEEN 1 AND 200),
  metric     text NOT NULL REFERENCES billing.metrics,
  amount     bigint NOT NULL CHECK (amount >= 0),
  hour       timestamptz NOT NULL,
  counted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, work_key, metric)
);
CREATE INDEX counted_hour_idx ON billing.counted (hour);

-- API requests per project and hour as one server's shared-memory counters last reported
-- them (epoch: that memory's lifetime). A flush sets n to the counter and adds the
-- difference to billing.usage in one transaction, so a repeated flush adds 0.
CREATE TABLE billing.request_counts (
  epoch      text NOT NULL,
  project_id uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  hour       timestamptz NOT NULL,
  n          bigint NOT NULL CHECK (n >= 0),
  flushed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (epoch, project_id, hour)
);

-- ======================================================================= rate limits
-- Token buckets: `burst` tokens at most, refilled at `per_second`; a request takes one.
CREATE TABLE billing.rate_limits (
  plan_id    text NOT NULL REFERENCES core.plans ON UPDATE CASCADE ON DELETE CASCADE,
  scope      text NOT NULL CHECK (scope IN ('key', 'project')),
  per_second double precision NOT NULL CHECK (per_second > 0),
  burst      bigint NOT NULL CHECK (burst >= 1),
  PRIMARY KEY (plan_id, scope)
);
INSERT INTO billing.rate_limits (plan_id, scope, per_second, burst)
SELECT pl.plan_id, s.scope,
       CASE pl.plan_id WHEN 'free' THEN s.free WHEN 'team' THEN s.team ELSE s.enterprise END,
       CASE pl.plan_id WHEN 'free' THEN s.free_burst WHEN 'team' THEN s.team_burst
                       ELSE s.enterprise_burst END
FROM core.plans pl
CROSS JOIN (VALUES ('key',     5.0, 50.0, 200.0,  20,  200,  800),
                   ('project', 10.0, 100.0, 400.0, 40, 400, 1600))
            AS s (scope, free, team, enterprise, free_burst, team_burst, enterprise_burst);

-- ======================================================================= Stripe
-- An organization's Stripe customer.
CREATE TABLE billing.customers (
  org_id             uuid PRIMARY KEY REFERENCES core.organizations ON DELETE CASCADE,
  stripe_customer_id text NOT NULL UNIQUE CHECK (stripe_customer_id ~ '^cus_[A-Za-z0-9]+$'),
  email              text,
  created_at         timestamptz NOT NULL DEFAULT now()
);

-- Subscriptions as Stripe last told us (stripe_updated: the `created` time of the event
-- that set this state; an older event changes nothing).
CREATE TABLE billing.subscriptions (
  stripe_subscription_id text PRIMARY KEY CHECK (stripe_subscription_id ~ '^sub_[A-Za-z0-9]+$'),
  org_id                 uuid NOT NULL REFERENCES core.organizations ON DELETE CASCADE,
  stripe_customer_id     text NOT NULL,
  status                 text NOT NULL,
  plan_id                text REFERENCES core.plans ON UPDATE CASCADE,
  stripe_price_id        text,
  current_period_start   timestamptz,
  current_period_end     timestamptz,
  cancel_at_period_end   boolean NOT NULL DEFAULT false,
  stripe_updated         timestamptz NOT NULL,
  updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_org_idx ON billing.subscriptions (org_id);

CREATE TABLE billing.invoices (
  stripe_invoice_id      text PRIMARY KEY CHECK (stripe_invoice_id ~ '^in_[A-Za-z0-9]+$'),
  org_id                 uuid NOT NULL REFERENCES core.organizations ON DELETE CASCADE,
  stripe_subscription_id text,
  number                 text,
  status                 text NOT NULL,
  currency               text NOT NULL,
  amount_due             bigint NOT NULL,        -- the currency's smallest unit
  amount_paid            bigint NOT NULL,
  period_start           timestamptz,
  period_end             timestamptz,
  hosted_invoice_url     text,
  stripe_updated         timestamptz NOT NULL,
  updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_org_idx ON billing.invoices (org_id, period_end DESC);

-- Every webhook event once, by its id, with its raw payload.
CREATE TABLE billing.stripe_events (
  event_id     text PRIMARY KEY CHECK (event_id ~ '^evt_[A-Za-z0-9]+$'),
  type         text NOT NULL,
  created      timestamptz NOT NULL,             -- Stripe's timestamp of the event
  livemode     boolean NOT NULL,
  payload      jsonb NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  result       text NOT NULL CHECK (result IN ('applied', 'stale', 'ignored', 'failed')),
  detail       text
);
CREATE INDEX stripe_events_created_idx ON billing.stripe_events (created);

-- The outbox of usage sent to Stripe as meter events: one row per project, metric and hour
-- (its identifier is Stripe's idempotency key), sent by report_usage jobs until Stripe
-- accepts it; an outage delays it, a retry never doubles it.
CREATE TABLE billing.usage_reports (
  project_id  uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  metric      text NOT NULL REFERENCES billing.metrics,
  hour        timestamptz NOT NULL,
  amount      bigint NOT NULL CHECK (amount >= 0),
  identifier  text NOT NULL UNIQUE,
  state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
  attempts    bigint NOT NULL DEFAULT 0,
  last_error  text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  sent_at     timestamptz,
  PRIMARY KEY (project_id, metric, hour)
);
CREATE INDEX usage_reports_pending_idx ON billing.usage_reports (created_at)
  WHERE state = 'pending';

RESET ROLE;
