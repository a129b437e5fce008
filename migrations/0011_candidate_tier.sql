-- 0011 · the candidate tier: 'strict' candidates pass the ontology's rules as written;
-- 'recall' candidates are the looser ones an ontology's `candidates.recall_factor` admits
-- (intervals at least recall_factor × the minimum duration but shorter than it), left for
-- the scoring model and reviewers. `secinf evaluate` counts strict candidates only; the
-- rule-score auto-accept applies to strict candidates only. See docs/rules.md ("Tiers").
-- depends: 0010_api_roles
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

-- A constant default: no table rewrite (PostgreSQL 11+), existing rows read 'strict'; the
-- check costs one read of the table (every existing row holds the default).
ALTER TABLE candidates.candidates
  ADD COLUMN tier text NOT NULL DEFAULT 'strict'
    CONSTRAINT candidates_tier_known CHECK (tier IN ('strict', 'recall'));

RESET ROLE;
