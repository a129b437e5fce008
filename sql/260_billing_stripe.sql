-- Stripe (issue 18, migration 0024): the webhook's events applied to the mirror of
-- customers, subscriptions and invoices; the organization's plan following its
-- subscription; the outbox of usage reports sent as meter events by report_usage jobs; the
-- caller of a checkout session. The HTTP side is workers/billing (`secinf serve`).
-- See docs/billing.md, "Stripe".
--
-- Every event is stored once by its id (billing.stripe_events, raw payload kept): the same
-- event twice changes nothing. Mirrored rows carry stripe_updated, the `created` time of
-- the event that set them; an event older than that is recorded `stale` and changes
-- nothing, so events resolve to the newest state whatever order they arrive in.

-- ======================================================================= helpers
-- The id of a Stripe reference that is either an id or an expanded object.
CREATE OR REPLACE FUNCTION billing.stripe_id(p_ref jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE jsonb_typeof(p_ref) WHEN 'string' THEN p_ref #>> '{}'
                                  WHEN 'object' THEN p_ref ->> 'id' END
$$;

-- Unix seconds (a JSON number or numeric string) as a timestamp; NULL stays NULL.
CREATE OR REPLACE FUNCTION billing.stripe_time(p_value jsonb) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN jsonb_typeof(p_value) = 'number'
                OR (jsonb_typeof(p_value) = 'string' AND p_value #>> '{}' ~ '^[0-9]{1,12}$')
              THEN to_timestamp((p_value #>> '{}')::double precision) END
$$;

-- The organization a Stripe object belongs to: its customer's (billing.customers), else
-- its subscription's (billing.subscriptions), else the org_id of its metadata (set by the
-- checkout sessions secinf creates) when that organization exists. NULL: unknown.
CREATE OR REPLACE FUNCTION billing.stripe_org(p_customer text, p_subscription text,
                                              p_metadata jsonb)
RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_org uuid;
  v_meta text := p_metadata ->> 'org_id';
BEGIN
  SELECT c.org_id INTO v_org FROM billing.customers c WHERE c.stripe_customer_id = p_customer;
  IF v_org IS NULL AND p_subscription IS NOT NULL THEN
    SELECT s.org_id INTO v_org FROM billing.subscriptions s
    WHERE s.stripe_subscription_id = p_subscription;
  END IF;
  IF v_org IS NULL AND v_meta ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
    SELECT o.org_id INTO v_org FROM core.organizations o WHERE o.org_id = v_meta::uuid;
  END IF;
  RETURN v_org;
END
$$;

-- ======================================================================= plans
-- Set an organization's plan from its subscriptions: the plan of the newest subscription
-- that is active, trialing or past_due (Stripe still retries the payment) with a price
-- that is some plan's core.plans.stripe_price_id; none: `free`. A change is audited
-- (action plan.change, actor stripe) once per project of the organization, so each
-- project's admins read it. Returns the plan afterwards.
CREATE OR REPLACE FUNCTION billing.sync_org_plan(p_org uuid, p_event_id text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old text;
  v_new text;
  v_sub text;
BEGIN
  SELECT o.plan_id INTO v_old FROM core.organizations o WHERE o.org_id = p_org FOR UPDATE;
  SELECT s.plan_id, s.stripe_subscription_id INTO v_new, v_sub
  FROM billing.subscriptions s
  WHERE s.org_id = p_org AND s.status IN ('active', 'trialing', 'past_due')
    AND s.plan_id IS NOT NULL
  ORDER BY s.stripe_updated DESC, s.stripe_subscription_id DESC
  LIMIT 1;
  v_new := coalesce(v_new, 'free');
  IF v_old IS DISTINCT FROM v_new THEN
    UPDATE core.organizations SET plan_id = v_new WHERE org_id = p_org;
    INSERT INTO audit.log (project_id, actor, action, target, details)
    SELECT p.project_id, 'stripe', 'plan.change', o.slug,
           jsonb_build_object('org_id', p_org, 'from', v_old, 'to', v_new,
                              'subscription', v_sub, 'event_id', p_event_id)
    FROM core.projects p JOIN core.organizations o ON o.org_id = p.org_id
    WHERE p.org_id = p_org;
  END IF;
  RETURN v_new;
END
$$;

-- ======================================================================= objects
-- Mirror a subscription as an event of time p_created describes it; deleted: canceled.
-- Returns (result, detail): applied, stale (a newer event set the row) or failed.
CREATE OR REPLACE FUNCTION billing.apply_subscription(p_event_id text, p_type text,
                                                      p_created timestamptz, p_sub jsonb,
                                                      OUT result text, OUT detail text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id text := p_sub ->> 'id';
  v_customer text := billing.stripe_id(p_sub -> 'customer');
  v_item jsonb := p_sub #> '{items,data,0}';
  v_price text := coalesce(billing.stripe_id(v_item -> 'price'),
                           billing.stripe_id(p_sub -> 'plan'));
  v_status text := CASE WHEN p_type = 'customer.subscription.deleted' THEN 'canceled'
                        ELSE p_sub ->> 'status' END;
  v_org uuid;
  v_plan text;
  v_now text;
BEGIN
  IF v_id IS NULL OR v_id !~ '^sub_[A-Za-z0-9]+$' OR v_customer IS NULL OR v_status IS NULL THEN
    result := 'failed';
    detail := 'the event''s subscription lacks an id (sub_…), a customer or a status';
    RETURN;
  END IF;
  v_org := billing.stripe_org(v_customer, v_id, p_sub -> 'metadata');
  IF v_org IS NULL THEN
    result := 'failed';
    detail := format('customer %s is linked to no organization and subscription %s names '
                     'none (metadata org_id); the event is applied again when '
                     'checkout.session.completed links the customer', v_customer, v_id);
    RETURN;
  END IF;
  SELECT pl.plan_id INTO v_plan FROM core.plans pl WHERE pl.stripe_price_id = v_price;
  INSERT INTO billing.subscriptions AS s
    (stripe_subscription_id, org_id, stripe_customer_id, status, plan_id, stripe_price_id,
     current_period_start, current_period_end, cancel_at_period_end, stripe_updated)
  VALUES (v_id, v_org, v_customer, v_status, v_plan, v_price,
          billing.stripe_time(coalesce(p_sub -> 'current_period_start',
                                       v_item -> 'current_period_start')),
          billing.stripe_time(coalesce(p_sub -> 'current_period_end',
                                       v_item -> 'current_period_end')),
          coalesce((p_sub ->> 'cancel_at_period_end')::boolean, false), p_created)
  ON CONFLICT (stripe_subscription_id) DO UPDATE
    SET org_id = excluded.org_id, stripe_customer_id = excluded.stripe_customer_id,
        status = excluded.status, plan_id = excluded.plan_id,
        stripe_price_id = excluded.stripe_price_id,
        current_period_start = excluded.current_period_start,
        current_period_end = excluded.current_period_end,
        cancel_at_period_end = excluded.cancel_at_period_end,
        stripe_updated = excluded.stripe_updated, updated_at = now()
    -- Same second: the later delivery wins (Stripe's `created` has whole seconds).
    WHERE s.stripe_updated <= excluded.stripe_updated;
  IF NOT FOUND THEN
    result := 'stale';
    detail := format('subscription %s holds the state of a newer event (%s)', v_id,
                     (SELECT s.stripe_updated FROM billing.subscriptions s
                      WHERE s.stripe_subscription_id = v_id));
    RETURN;
  END IF;
  v_now := billing.sync_org_plan(v_org, p_event_id);
  result := 'applied';
  detail := format('subscription %s %s; organization plan %s', v_id, v_status, v_now)
            || CASE WHEN v_plan IS NULL
                    THEN format(' (price %s is no plan''s core.plans.stripe_price_id)',
                                coalesce(v_price, 'none'))
                    ELSE '' END;
END
$$;

-- Mirror an invoice as an event of time p_created describes it.
CREATE OR REPLACE FUNCTION billing.apply_invoice(p_created timestamptz, p_inv jsonb,
                                                 OUT result text, OUT detail text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id text := p_inv ->> 'id';
  v_customer text := billing.stripe_id(p_inv -> 'customer');
  -- API versions before 2025-03 name the subscription at the top, later ones under parent.
  v_sub text := coalesce(billing.stripe_id(p_inv -> 'subscription'),
                         billing.stripe_id(p_inv #> '{parent,subscription_details,subscription}'));
  v_org uuid;
BEGIN
  IF v_id IS NULL OR v_id !~ '^in_[A-Za-z0-9]+$' OR p_inv ->> 'status' IS NULL
     OR p_inv ->> 'currency' IS NULL THEN
    result := 'failed';
    detail := 'the event''s invoice lacks an id (in_…), a status or a currency';
    RETURN;
  END IF;
  v_org := billing.stripe_org(v_customer, v_sub,
                              coalesce(p_inv -> 'metadata', '{}')
                              || coalesce(p_inv #> '{parent,subscription_details,metadata}', '{}'));
  IF v_org IS NULL THEN
    result := 'failed';
    detail := format('customer %s of invoice %s is linked to no organization; the event is '
                     'applied again when checkout.session.completed links the customer',
                     coalesce(v_customer, '(none)'), v_id);
    RETURN;
  END IF;
  INSERT INTO billing.invoices AS i
    (stripe_invoice_id, org_id, stripe_subscription_id, number, status, currency, amount_due,
     amount_paid, period_start, period_end, hosted_invoice_url, stripe_updated)
  VALUES (v_id, v_org, v_sub, p_inv ->> 'number', p_inv ->> 'status', p_inv ->> 'currency',
          coalesce((p_inv ->> 'amount_due')::bigint, 0),
          coalesce((p_inv ->> 'amount_paid')::bigint, 0),
          billing.stripe_time(p_inv -> 'period_start'), billing.stripe_time(p_inv -> 'period_end'),
          p_inv ->> 'hosted_invoice_url', p_created)
  ON CONFLICT (stripe_invoice_id) DO UPDATE
    SET org_id = excluded.org_id, stripe_subscription_id = excluded.stripe_subscription_id,
        number = excluded.number, status = excluded.status, currency = excluded.currency,
        amount_due = excluded.amount_due, amount_paid = excluded.amount_paid,
        period_start = excluded.period_start, period_end = excluded.period_end,
        hosted_invoice_url = excluded.hosted_invoice_url,
        stripe_updated = excluded.stripe_updated, updated_at = now()
    WHERE i.stripe_updated <= excluded.stripe_updated;
  IF NOT FOUND THEN
    result := 'stale';
    detail := format('invoice %s holds the state of a newer event', v_id);
    RETURN;
  END IF;
  result := 'applied';
  detail := format('invoice %s %s', v_id, p_inv ->> 'status');
END
$$;

-- A completed checkout: link the organization (client_reference_id, else metadata org_id)
-- to its Stripe customer, then apply again the stored events that failed for want of that
-- link (a subscription event that arrived first), oldest first.
CREATE OR REPLACE FUNCTION billing.apply_checkout(p_session jsonb,
                                                  OUT result text, OUT detail text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ref text := coalesce(p_session ->> 'client_reference_id', p_session #>> '{metadata,org_id}');
  v_customer text := billing.stripe_id(p_session -> 'customer');
  v_org uuid;
  v_other uuid;
  v_again bigint := 0;
  e record;
  r record;
BEGIN
  IF v_ref ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
    SELECT o.org_id INTO v_org FROM core.organizations o WHERE o.org_id = v_ref::uuid;
  END IF;
  IF v_org IS NULL THEN
    result := 'failed';
    detail := format('checkout session %s names no organization of secinf '
                     '(client_reference_id %s)', p_session ->> 'id', coalesce(v_ref, 'missing'));
    RETURN;
  END IF;
  IF v_customer IS NULL OR v_customer !~ '^cus_[A-Za-z0-9]+$' THEN
    result := 'failed';
    detail := format('checkout session %s has no customer (cus_…)', p_session ->> 'id');
    RETURN;
  END IF;
  SELECT c.org_id INTO v_other FROM billing.customers c WHERE c.stripe_customer_id = v_customer;
  IF v_other IS NOT NULL AND v_other <> v_org THEN
    result := 'failed';
    detail := format('customer %s is linked to organization %s already, not %s', v_customer,
                     v_other, v_org);
    RETURN;
  END IF;
  INSERT INTO billing.customers AS c (org_id, stripe_customer_id, email)
  VALUES (v_org, v_customer, p_session #>> '{customer_details,email}')
  ON CONFLICT (org_id) DO UPDATE
    SET stripe_customer_id = excluded.stripe_customer_id,
        email = coalesce(excluded.email, c.email);
  FOR e IN
    SELECT s.event_id, s.type, s.created, s.payload FROM billing.stripe_events s
    WHERE s.result = 'failed' AND s.type <> 'checkout.session.completed'
      AND billing.stripe_id(s.payload #> '{data,object,customer}') = v_customer
    ORDER BY s.created, s.received_at
  LOOP
    r := billing.apply_stripe_object(e.event_id, e.type, e.created, e.payload #> '{data,object}');
    UPDATE billing.stripe_events SET result = r.result, detail = r.detail
    WHERE event_id = e.event_id;
    v_again := v_again + 1;
  END LOOP;
  result := 'applied';
  detail := format('organization %s linked to customer %s (subscription %s)', v_org,
                   v_customer, coalesce(billing.stripe_id(p_session -> 'subscription'), 'none'))
            || CASE WHEN v_again > 0 THEN format('; %s earlier events applied again', v_again)
                    ELSE '' END;
END
$$;

-- The effect of one event's object by its type: (result, detail); unknown types ignored.
CREATE OR REPLACE FUNCTION billing.apply_stripe_object(p_event_id text, p_type text,
                                                       p_created timestamptz, p_object jsonb,
                                                       OUT result text, OUT detail text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
BEGIN
  IF jsonb_typeof(p_object) IS DISTINCT FROM 'object' THEN
    result := 'failed';
    detail := 'the event has no data.object';
    RETURN;
  END IF;
  CASE
    WHEN p_type IN ('customer.subscription.created', 'customer.subscription.updated',
                    'customer.subscription.deleted') THEN
      r := billing.apply_subscription(p_event_id, p_type, p_created, p_object);
    WHEN p_type IN ('invoice.paid', 'invoice.payment_failed', 'invoice.finalized') THEN
      r := billing.apply_invoice(p_created, p_object);
    WHEN p_type = 'checkout.session.completed' THEN
      r := billing.apply_checkout(p_object);
    ELSE
      result := 'ignored';
      detail := format('secinf does not act on %s events', p_type);
      RETURN;
  END CASE;
  result := r.result;
  detail := r.detail;
END
$$;

-- ======================================================================= webhook
-- Apply one verified webhook event (the signature was checked by the caller, the file
-- service). Stored once by id: a repeated event changes nothing and answers what the first
-- delivery did (replayed true); one recorded `failed` is applied again. Events of one id
-- are serialized (a concurrent second delivery waits, then sees the first).
-- Returns {event_id, type, result: applied|stale|ignored|failed, detail, replayed}.
CREATE OR REPLACE FUNCTION billing.apply_stripe_event(p_event jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id text := p_event ->> 'id';
  v_type text := p_event ->> 'type';
  v_created timestamptz := billing.stripe_time(p_event -> 'created');
  v_seen billing.stripe_events;
  r record;
BEGIN
  IF v_id IS NULL OR v_id !~ '^evt_[A-Za-z0-9]+$' OR v_type IS NULL OR v_created IS NULL THEN
    RAISE EXCEPTION 'not a Stripe event: it needs an id (evt_…), a type and a created time'
      USING ERRCODE = '22023',
            HINT = 'Post only what Stripe sends to the webhook endpoint.';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('stripe_event:' || v_id, 0));
  SELECT * INTO v_seen FROM billing.stripe_events s WHERE s.event_id = v_id;
  IF FOUND AND v_seen.result <> 'failed' THEN
    RETURN jsonb_build_object('event_id', v_id, 'type', v_seen.type, 'result', v_seen.result,
                              'detail', v_seen.detail, 'replayed', true);
  END IF;
  r := billing.apply_stripe_object(v_id, v_type, v_created, p_event #> '{data,object}');
  INSERT INTO billing.stripe_events AS s (event_id, type, created, livemode, payload, result,
                                          detail)
  VALUES (v_id, v_type, v_created, coalesce((p_event ->> 'livemode')::boolean, false), p_event,
          r.result, r.detail)
  ON CONFLICT (event_id) DO UPDATE
    SET result = excluded.result, detail = excluded.detail, received_at = now();
  RETURN jsonb_build_object('event_id', v_id, 'type', v_type, 'result', r.result,
                            'detail', r.detail, 'replayed', v_seen.event_id IS NOT NULL);
END
$$;

-- ======================================================================= usage reports
-- Fill the outbox with the usage of completed hours (ended more than p_grace ago, so the
-- counts of transactions still open at the hour's end are in) of projects whose
-- organization has a Stripe customer, from the hour the customer was linked; one row per
-- project, metric and hour, never twice (identifier secinf-<project>-<metric>-<hour
-- epoch>). Then queue one report_usage job per project with pending reports (one live job
-- per project: dedupe key report_usage). Returns the number of reports added.
CREATE OR REPLACE FUNCTION billing.queue_usage_reports(p_grace interval DEFAULT '15 minutes')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_added bigint;
  v_project uuid;
BEGIN
  INSERT INTO billing.usage_reports (project_id, metric, hour, amount, identifier)
  SELECT u.project_id, u.metric, u.hour, u.amount,
         format('secinf-%s-%s-%s', u.project_id, u.metric, extract(epoch FROM u.hour)::bigint)
  FROM billing.usage u
  JOIN core.projects p ON p.project_id = u.project_id
  JOIN billing.customers c ON c.org_id = p.org_id
  WHERE u.amount > 0
    AND u.hour + interval '1 hour' <= now() - p_grace
    AND u.hour >= billing.hour_of(c.created_at)
  ON CONFLICT (project_id, metric, hour) DO NOTHING;
  GET DIAGNOSTICS v_added = ROW_COUNT;
  FOR v_project IN SELECT DISTINCT r.project_id FROM billing.usage_reports r
                   WHERE r.state = 'pending'
  LOOP
    PERFORM jobs.enqueue(v_project, 'report_usage', '{}'::jsonb,
                         p_max_attempts => 8, p_retry_delay => interval '30 seconds',
                         p_dedupe_key => 'report_usage');
  END LOOP;
  RETURN v_added;
END
$$;

-- The pending reports of job p_job's project, oldest hour first, with its customer.
CREATE OR REPLACE FUNCTION billing.pending_usage_reports(p_job bigint, p_limit bigint)
RETURNS TABLE (identifier text, metric text, hour timestamptz, amount bigint,
               stripe_customer_id text, attempts bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT r.identifier, r.metric, r.hour, r.amount, c.stripe_customer_id, r.attempts
  FROM jobs.jobs j
  JOIN billing.usage_reports r ON r.project_id = j.project_id AND r.state = 'pending'
  JOIN core.projects p ON p.project_id = j.project_id
  JOIN billing.customers c ON c.org_id = p.org_id
  WHERE j.job_id = p_job
  ORDER BY r.hour, r.metric
  LIMIT p_limit
$$;

-- Record one send of a report, fenced like every job write-back (jobs.fence: raises JB001,
-- writing nothing, unless attempt p_attempt still holds the lease): p_state `sent` (Stripe
-- accepted it), `pending` (Stripe refused or was unreachable: p_error kept, sent again
-- later) or `failed` (Stripe can never take it). Returns the report's state afterwards.
CREATE OR REPLACE FUNCTION billing.record_usage_report(p_job bigint, p_attempt bigint,
                                                       p_identifier text, p_state text,
                                                       p_error text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_state text;
BEGIN
  PERFORM jobs.fence(p_job, p_attempt);
  IF p_state NOT IN ('sent', 'pending', 'failed') THEN
    RAISE EXCEPTION 'a usage report''s state is sent, pending or failed, not %', p_state
      USING ERRCODE = '22023';
  END IF;
  UPDATE billing.usage_reports r
  SET state = CASE WHEN r.state = 'sent' THEN 'sent' ELSE p_state END,
      attempts = r.attempts + 1,
      last_error = CASE WHEN p_state = 'sent' THEN r.last_error ELSE left(p_error, 1000) END,
      sent_at = CASE WHEN p_state = 'sent' THEN coalesce(r.sent_at, now()) ELSE r.sent_at END
  FROM jobs.jobs j
  WHERE j.job_id = p_job AND r.project_id = j.project_id AND r.identifier = p_identifier
  RETURNING r.state INTO v_state;
  RETURN v_state;
END
$$;

-- ======================================================================= checkout
-- Verify an API token (HS256, as PostgREST verifies it) with the active signing secret,
-- which never leaves the database: its claims, or PT401 for a token that is malformed,
-- not signed with that secret, expired or not yet valid.
CREATE OR REPLACE FUNCTION billing.verify_token(p_token text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_secret text := auth.active_secret();
  v_check jsonb;
BEGIN
  IF p_token IS NULL OR length(p_token) > 8192
     OR p_token !~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' THEN
    RAISE EXCEPTION 'the bearer token is not a JWT' USING ERRCODE = 'PT401',
      HINT = 'Send Authorization: Bearer <token> with a token from api.exchange_key.';
  END IF;
  v_check := CASE WHEN v_secret IS NULL THEN '{"error": "signature"}'::jsonb
                  ELSE auth.verify_jwt(p_token, v_secret) END;
  CASE v_check ->> 'error'
    WHEN 'signature' THEN
      RAISE EXCEPTION 'the bearer token''s signature is not valid' USING ERRCODE = 'PT401',
        HINT = 'Exchange your API key again (api.exchange_key): tokens signed with a rotated '
               'secret stop working.';
    WHEN 'expired' THEN
      RAISE EXCEPTION 'the bearer token expired at %', to_timestamp((v_check ->> 'exp')::numeric)
        USING ERRCODE = 'PT401', HINT = 'Exchange your API key again (api.exchange_key).';
    WHEN 'immature' THEN
      RAISE EXCEPTION 'the bearer token is not valid before %',
        to_timestamp((v_check ->> 'nbf')::numeric) USING ERRCODE = 'PT401';
    WHEN 'malformed' THEN
      RAISE EXCEPTION 'the bearer token is not a JWT' USING ERRCODE = 'PT401';
    WHEN 'algorithm' THEN
      RAISE EXCEPTION 'the bearer token is not an HS256 JWT of claims' USING ERRCODE = 'PT401';
    ELSE
      RETURN v_check -> 'claims';
  END CASE;
END
$$;

-- What a checkout session for plan p_plan needs, for the caller as PostgREST would run it
-- (role and claims set, api.pre_request passed): project_admin of the token's one project.
-- Returns {project_id, org_id, plan, price_id, customer_id, current_plan}.
CREATE OR REPLACE FUNCTION billing.checkout_context(p_plan text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_projects uuid[] := auth.project_ids();
  v_project uuid;
  v_org core.organizations;
  v_price text;
  v_customer text;
BEGIN
  IF cardinality(v_projects) <> 1 THEN
    RAISE EXCEPTION 'the token names no single project' USING ERRCODE = '42501',
      HINT = 'Use a token from a project_admin API key of the organization''s project.';
  END IF;
  v_project := v_projects[1];
  PERFORM auth.require(v_project, ARRAY['project_admin']);
  IF NOT EXISTS (SELECT FROM core.plans pl WHERE pl.plan_id = p_plan) THEN
    RAISE EXCEPTION 'unknown plan "%"', p_plan USING ERRCODE = '22023',
      HINT = 'Plans sold through Stripe: ' || coalesce(
        (SELECT string_agg(pl.plan_id, ', ' ORDER BY pl.plan_id) FROM core.plans pl
         WHERE pl.stripe_price_id IS NOT NULL), '(none)') || '.';
  END IF;
  SELECT pl.stripe_price_id INTO v_price FROM core.plans pl WHERE pl.plan_id = p_plan;
  IF v_price IS NULL THEN
    RAISE EXCEPTION 'plan "%" is not sold through Stripe (it has no stripe_price_id)', p_plan
      USING ERRCODE = '22023',
            HINT = 'Plans sold through Stripe: ' || coalesce(
              (SELECT string_agg(pl.plan_id, ', ' ORDER BY pl.plan_id) FROM core.plans pl
               WHERE pl.stripe_price_id IS NOT NULL), '(none)')
              || '. An operator sets a plan''s price: UPDATE core.plans SET stripe_price_id = '
              || '''price_…'' (docs/billing.md, "Stripe").';
  END IF;
  SELECT o.* INTO v_org FROM core.organizations o
  JOIN core.projects p ON p.org_id = o.org_id WHERE p.project_id = v_project;
  SELECT c.stripe_customer_id INTO v_customer FROM billing.customers c
  WHERE c.org_id = v_org.org_id;
  RETURN jsonb_build_object('project_id', v_project, 'org_id', v_org.org_id, 'plan', p_plan,
                            'price_id', v_price, 'customer_id', v_customer,
                            'current_plan', v_org.plan_id);
END
$$;

-- Audit a checkout session Stripe created for the caller (billing.checkout_context's).
CREATE OR REPLACE FUNCTION billing.checkout_created(p_plan text, p_session_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ctx jsonb := billing.checkout_context(p_plan);
BEGIN
  PERFORM audit.record((v_ctx ->> 'project_id')::uuid, 'billing.checkout', p_session_id,
                       jsonb_build_object('plan', p_plan, 'org_id', v_ctx ->> 'org_id',
                                          'price_id', v_ctx ->> 'price_id',
                                          'from_plan', v_ctx ->> 'current_plan'));
END
$$;
