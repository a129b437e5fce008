-- 0024 rollback: no metering, quotas, rate limits or Stripe mirror (what was counted is lost).
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DROP SCHEMA billing CASCADE;
ALTER TABLE core.plans DROP COLUMN stripe_price_id;
