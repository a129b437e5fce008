-- 0018 · security hardening (issue 16): who a token speaks for and for how long.
--   * auth.token_lifetimes: how long a token minted from an API key or a sign-in lives, per
--     role. The server decides; callers cannot ask for more (core.exchange_api_key,
--     core.login_account).
--   * core.api_keys.owner: the account (person) an API key acts for. Review decisions are
--     made by people: a key decides only when it has an owner, and then as that person, so
--     one person with a key and an account is one reviewer.
--   * auth.notify_channels: the NOTIFY channel names. PostgreSQL has no per-channel grants
--     (anyone may LISTEN or NOTIFY any name), so each channel gets an unguessable name that
--     only the owner and the pipeline role can read (auth.channel()).
-- See docs/operations.md ("Security").
-- depends: 0017_training_examples
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '5min';

-- ======================================================================= token lifetimes
CREATE TABLE auth.token_lifetimes (
  role      text PRIMARY KEY
            CHECK (role IN ('customer', 'reviewer', 'analyst', 'project_admin')),
  key_ttl   interval NOT NULL CHECK (key_ttl > interval '0' AND key_ttl <= interval '1 day'),
  login_ttl interval NOT NULL CHECK (login_ttl > interval '0' AND login_ttl <= interval '1 day')
);
COMMENT ON TABLE auth.token_lifetimes IS
  'How long a token lives, per role: key_ttl for tokens from api.exchange_key, login_ttl for '
  'tokens from api.login. At most one day; an API key''s own expiry is never exceeded.';
INSERT INTO auth.token_lifetimes (role, key_ttl, login_ttl) VALUES
  ('customer',      '1 hour', '1 hour'),
  ('reviewer',      '1 hour', '8 hours'),
  ('analyst',       '1 hour', '8 hours'),
  ('project_admin', '1 hour', '4 hours');

-- ======================================================================= key owners
-- A new, all-NULL column: the check scans a handful of key rows (keys, not data).
ALTER TABLE core.api_keys
  -- squawk-ignore adding-foreign-key-constraint
  ADD COLUMN owner text REFERENCES core.accounts (username) ON DELETE SET NULL;
COMMENT ON COLUMN core.api_keys.owner IS
  'The account this key acts for in reviews (NULL: a machine key, which cannot decide).';

-- ======================================================================= channels
CREATE TABLE auth.notify_channels (
  purpose text PRIMARY KEY CHECK (purpose ~ '^[a-z_]{1,24}$'),
  channel text NOT NULL UNIQUE CHECK (channel ~ '^[a-z0-9_]{1,63}$')
);
COMMENT ON TABLE auth.notify_channels IS
  'The secret NOTIFY channel name of each purpose (jobs, candidates). Read with auth.channel().';
