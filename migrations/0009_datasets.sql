-- 0009 · datasets: versioned exports of a project's verified events (semver), the files of
-- each version with their checksums, and the quality gates checked before publishing.
-- A published version is immutable: triggers refuse every change to it, its files and its
-- reports, whoever asks (the owner and superusers included). See docs/datasets.md.
-- depends: 0008_review_events
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

CREATE SCHEMA datasets;

-- ======================================================================= versions
-- One version of one dataset of a project. Created as a draft with its manifest and data
-- card, then moved to published (every quality gate passed) or blocked (a gate failed).
-- Files live under storage_path (a directory on the exporter's storage root).
CREATE TABLE datasets.versions (
  version_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id       uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  name             text NOT NULL DEFAULT 'events' CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
  version          text NOT NULL
                   CHECK (version ~ '^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$'),
  major            bigint GENERATED ALWAYS AS (split_part(version, '.', 1)::bigint) STORED,
  minor            bigint GENERATED ALWAYS AS (split_part(version, '.', 2)::bigint) STORED,
  patch            bigint GENERATED ALWAYS AS (split_part(version, '.', 3)::bigint) STORED,
  status           text NOT NULL DEFAULT 'draft'
                   CHECK (status IN ('draft',       -- being built; files and reports attach
                                     'published',   -- every gate passed; immutable
                                     'blocked')),   -- a gate failed; kept with its report
  schema_version   bigint NOT NULL CHECK (schema_version >= 1),  -- layout of the files
  split_seed       bigint NOT NULL,
  train_ratio      double precision NOT NULL CHECK (train_ratio BETWEEN 0 AND 1),
  val_ratio        double precision NOT NULL CHECK (val_ratio BETWEEN 0 AND 1),
  test_ratio       double precision NOT NULL CHECK (test_ratio BETWEEN 0 AND 1),
  context_s        double precision NOT NULL CHECK (context_s >= 0),  -- features around spans
  ontology_name    text,
  ontology_version bigint,
  ontology_sha256  text CHECK (ontology_sha256 ~ '^[0-9a-f]{64}$'),
  model_version    text,                   -- the model whose scores the events carry
  events           bigint NOT NULL DEFAULT 0 CHECK (events >= 0),
  manifest         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(manifest) = 'object'),
  manifest_sha256  text CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),  -- of manifest.json
  data_card        text,                   -- Markdown
  storage_path     text NOT NULL,
  created_by       text NOT NULL DEFAULT session_user,
  created_at       timestamptz NOT NULL DEFAULT now(),
  published_by     text,
  published_at     timestamptz,
  UNIQUE (project_id, name, version),
  UNIQUE (project_id, version_id),         -- target of the children's foreign keys
  CONSTRAINT versions_ratios_sum CHECK (abs(train_ratio + val_ratio + test_ratio - 1) < 1e-9),
  CONSTRAINT versions_published_complete CHECK (
    status <> 'published' OR (published_at IS NOT NULL AND published_by IS NOT NULL
                              AND manifest_sha256 IS NOT NULL AND data_card IS NOT NULL))
);
CREATE INDEX versions_semver_idx ON datasets.versions (project_id, name, major, minor, patch);

-- ======================================================================= files
-- Every file of a version: path relative to the version's directory, rows (tables only),
-- size and sha256 as written. `secinf datasets verify` re-checks them on disk.
CREATE TABLE datasets.files (
  file_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id uuid NOT NULL,
  version_id bigint NOT NULL,
  path       text NOT NULL CHECK (path ~ '^[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}$'
                                  AND path !~ '(^|/)\.\.?(/|$)'),
  kind       text NOT NULL CHECK (kind IN ('events',    -- Parquet: one row per event
                                           'features',  -- Parquet: actors' kinematics
                                           'card',      -- the Markdown data card
                                           'plot',      -- PNG beside the card
                                           'report')),  -- the quality report (JSON)
  split      text CHECK (split IN ('train', 'val', 'test')),
  rows       bigint CHECK (rows >= 0),
  bytes      bigint NOT NULL CHECK (bytes >= 0),
  sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  UNIQUE (version_id, path),
  FOREIGN KEY (project_id, version_id) REFERENCES datasets.versions (project_id, version_id)
    ON DELETE CASCADE
);

-- ======================================================================= quality reports
-- One row per gate checked for a version; `summary` names what failed in one line.
CREATE TABLE datasets.quality_reports (
  report_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id uuid NOT NULL,
  version_id bigint NOT NULL,
  gate       text NOT NULL CHECK (gate ~ '^[a-z][a-z0-9_]{0,62}$'),
  passed     boolean NOT NULL,
  summary    text NOT NULL,
  details    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
  checked_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (version_id, gate),
  FOREIGN KEY (project_id, version_id) REFERENCES datasets.versions (project_id, version_id)
    ON DELETE CASCADE
);

-- ======================================================================= immutability
-- Versions: created as drafts only; published only from a draft whose gates all passed
-- and that has files; a published row refuses UPDATE and DELETE. SECURITY DEFINER so the
-- checks see every report whatever the caller's row-level security.
CREATE FUNCTION datasets.guard_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_failed text;
BEGIN
  IF tg_op = 'INSERT' THEN
    IF NEW.status <> 'draft' THEN
      RAISE EXCEPTION 'dataset %@% must be created as a draft, not %',
        NEW.name, NEW.version, NEW.status USING ERRCODE = '23514',
        HINT = 'Insert a draft, attach files and quality reports, then publish it.';
    END IF;
    RETURN NEW;
  END IF;
  IF OLD.status = 'published' THEN
    RAISE EXCEPTION 'dataset %@% is published and immutable (% refused)',
      OLD.name, OLD.version, tg_op USING ERRCODE = '42501',
      HINT = 'Publish a new version instead.';
  END IF;
  IF tg_op = 'DELETE' THEN
    RETURN OLD;
  END IF;
  IF NEW.status = 'published' THEN
    IF OLD.status <> 'draft' THEN
      RAISE EXCEPTION 'dataset %@% is % and cannot be published', OLD.name, OLD.version,
        OLD.status USING ERRCODE = '23514', HINT = 'Export it again as a new draft.';
    END IF;
    SELECT string_agg(r.gate, ', ' ORDER BY r.gate) INTO v_failed
    FROM datasets.quality_reports r WHERE r.version_id = OLD.version_id AND NOT r.passed;
    IF v_failed IS NOT NULL THEN
      RAISE EXCEPTION 'dataset %@% failed quality gates: %', OLD.name, OLD.version, v_failed
        USING ERRCODE = '23514';
    END IF;
    IF NOT EXISTS (SELECT FROM datasets.quality_reports r WHERE r.version_id = OLD.version_id)
       OR NOT EXISTS (SELECT FROM datasets.files f WHERE f.version_id = OLD.version_id) THEN
      RAISE EXCEPTION 'dataset %@% has no quality report or no files', OLD.name, OLD.version
        USING ERRCODE = '23514';
    END IF;
    NEW.published_at := coalesce(NEW.published_at, clock_timestamp());
    NEW.published_by := coalesce(NEW.published_by, session_user::text);
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER versions_guard
  BEFORE INSERT OR UPDATE OR DELETE ON datasets.versions
  FOR EACH ROW EXECUTE FUNCTION datasets.guard_version();

-- Files and quality reports: no row is added to, changed in or removed from a published
-- version. FOR SHARE on the version makes a concurrent publish wait for this change.
CREATE FUNCTION datasets.guard_version_part() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids bigint[];
  v_name text;
BEGIN
  v_ids := CASE tg_op WHEN 'INSERT' THEN ARRAY[NEW.version_id]
                      WHEN 'DELETE' THEN ARRAY[OLD.version_id]
                      ELSE ARRAY[OLD.version_id, NEW.version_id] END;
  SELECT v.name || '@' || v.version INTO v_name
  FROM datasets.versions v
  WHERE v.version_id = ANY (v_ids) AND v.status = 'published'
  LIMIT 1
  FOR SHARE;
  IF v_name IS NOT NULL THEN
    RAISE EXCEPTION 'dataset % is published and immutable (% on %.% refused)',
      v_name, tg_op, tg_table_schema, tg_table_name USING ERRCODE = '42501',
      HINT = 'Publish a new version instead.';
  END IF;
  RETURN CASE tg_op WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE TRIGGER files_guard
  BEFORE INSERT OR UPDATE OR DELETE ON datasets.files
  FOR EACH ROW EXECUTE FUNCTION datasets.guard_version_part();
CREATE TRIGGER quality_reports_guard
  BEFORE INSERT OR UPDATE OR DELETE ON datasets.quality_reports
  FOR EACH ROW EXECUTE FUNCTION datasets.guard_version_part();

-- TRUNCATE skips row triggers: refuse it while any version is published.
CREATE FUNCTION datasets.guard_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF EXISTS (SELECT FROM datasets.versions v WHERE v.status = 'published') THEN
    RAISE EXCEPTION '%.% holds published and immutable dataset versions (TRUNCATE refused)',
      tg_table_schema, tg_table_name USING ERRCODE = '42501';
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER versions_no_truncate BEFORE TRUNCATE ON datasets.versions
  FOR EACH STATEMENT EXECUTE FUNCTION datasets.guard_truncate();
CREATE TRIGGER files_no_truncate BEFORE TRUNCATE ON datasets.files
  FOR EACH STATEMENT EXECUTE FUNCTION datasets.guard_truncate();
CREATE TRIGGER quality_reports_no_truncate BEFORE TRUNCATE ON datasets.quality_reports
  FOR EACH STATEMENT EXECUTE FUNCTION datasets.guard_truncate();

RESET ROLE;
