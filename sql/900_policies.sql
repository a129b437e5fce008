-- Row-level security for every tenant table, in one place.
--
-- RLS decides *which project's rows* a caller sees; GRANTs (970_grants.sql) decide *what*
-- a role may do at all. Every table with a project_id column in a tenant schema gets RLS
-- enabled AND forced (so the owner is bound too) and three policies:
--   * members read and write their project's rows (the API roles, scoped by auth.project_ids())
--   * the pipeline works on every project (workers, cron)
--   * the owner's functions act on every project (SECURITY DEFINER code checks the caller)
-- A table added by a later migration is covered the next time sql/ is applied.

DO $$
DECLARE
  t record;
BEGIN
  FOR t IN
    SELECT c.oid::regclass AS rel, n.nspname, c.relname
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'project_id' AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname IN ('core', 'ingest', 'features', 'rules', 'candidates', 'review', 'events',
                        'jobs', 'datasets', 'billing', 'scoring', 'pipeline', 'analytics', 'audit',
                        'files', 'records')
  LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t.rel);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t.rel);
    EXECUTE format('DROP POLICY IF EXISTS %I ON %s', 'members act on their project''s rows', t.rel);
    EXECUTE format(
      'CREATE POLICY %I ON %s FOR ALL TO customer, reviewer, analyst, project_admin '
      'USING (project_id = ANY ((SELECT auth.project_ids())::uuid[])) '
      'WITH CHECK (project_id = ANY ((SELECT auth.project_ids())::uuid[]))',
      'members act on their project''s rows', t.rel);
    EXECUTE format('DROP POLICY IF EXISTS %I ON %s', 'the pipeline works on every project', t.rel);
    EXECUTE format(
      'CREATE POLICY %I ON %s FOR ALL TO pipeline USING (true) WITH CHECK (true)',
      'the pipeline works on every project', t.rel);
    EXECUTE format('DROP POLICY IF EXISTS %I ON %s', 'the owner''s functions act on every project', t.rel);
    EXECUTE format(
      'CREATE POLICY %I ON %s FOR ALL TO secinf_owner USING (true) WITH CHECK (true)',
      'the owner''s functions act on every project', t.rel);
  END LOOP;
END
$$;

-- Organizations have no project_id: members see the organizations of their projects.
ALTER TABLE core.organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.organizations FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "members read their projects' organizations" ON core.organizations;
CREATE POLICY "members read their projects' organizations" ON core.organizations
  FOR SELECT TO customer, reviewer, analyst, project_admin
  USING (org_id IN (SELECT p.org_id FROM core.projects p
                    WHERE p.project_id = ANY ((SELECT auth.project_ids())::uuid[])));
DROP POLICY IF EXISTS "the owner's functions act on every organization" ON core.organizations;
CREATE POLICY "the owner's functions act on every organization" ON core.organizations
  FOR ALL TO secinf_owner USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS "the pipeline reads every organization" ON core.organizations;
CREATE POLICY "the pipeline reads every organization" ON core.organizations
  FOR SELECT TO pipeline USING (true);

-- Billing's organization tables (Stripe's customers, subscriptions, invoices): members read
-- their projects' organizations' rows; only the owner's functions (the webhook's) write.
-- Stripe's raw events belong to no tenant: the owner only.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['billing.customers', 'billing.subscriptions', 'billing.invoices'] LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('DROP POLICY IF EXISTS %I ON %s', 'members read their organization''s rows', t);
    EXECUTE format(
      'CREATE POLICY %I ON %s FOR SELECT TO customer, reviewer, analyst, project_admin '
      'USING (org_id IN (SELECT p.org_id FROM core.projects p '
      'WHERE p.project_id = ANY ((SELECT auth.project_ids())::uuid[])))',
      'members read their organization''s rows', t);
    EXECUTE format('DROP POLICY IF EXISTS %I ON %s', 'the owner''s functions act on every organization', t);
    EXECUTE format('CREATE POLICY %I ON %s FOR ALL TO secinf_owner USING (true) WITH CHECK (true)',
                   'the owner''s functions act on every organization', t);
    EXECUTE format('DROP POLICY IF EXISTS %I ON %s', 'the pipeline works on every organization', t);
    EXECUTE format('CREATE POLICY %I ON %s FOR ALL TO pipeline USING (true) WITH CHECK (true)',
                   'the pipeline works on every organization', t);
  END LOOP;
END
$$;
ALTER TABLE billing.stripe_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE billing.stripe_events FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "only the owner's functions read Stripe's events" ON billing.stripe_events;
CREATE POLICY "only the owner's functions read Stripe's events" ON billing.stripe_events
  FOR ALL TO secinf_owner USING (true) WITH CHECK (true);

-- Signing secrets: the owner only (through SECURITY DEFINER functions).
ALTER TABLE auth.signing_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.signing_keys FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "only the owner reads signing secrets" ON auth.signing_keys;
CREATE POLICY "only the owner reads signing secrets" ON auth.signing_keys
  FOR ALL TO secinf_owner USING (true) WITH CHECK (true);
