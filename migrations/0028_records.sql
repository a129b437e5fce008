-- 0028 · records (issue 19, governance): what is kept and for how long, what may not be
-- deleted, and what was erased.
--   * records.categories / plan_retention / project_retention: retention per category of
--     data, a default per plan and a project's own (sql/78_records_retention.sql applies it
--     every night under pg_cron; every run and step in retention_runs / retention_steps).
--   * records.holds: legal holds on a project, a source or a time range; retention skips
--     what they cover and erasure refuses it (sql/77_records_holds.sql).
--   * records.subjects: customer-supplied subject hashes linked to tracks, so one person's
--     tracks can be erased together; records.tombstones: what an erasure deleted, when, by
--     whom and why, with counts and never the data, kept 7 years (sql/79_records_erasure.sql).
--   * records.superseded_versions / expired_versions: published dataset versions stay
--     immutable; an erasure marks those holding the subject superseded, retention marks old
--     ones expired (their objects deleted by a queue job).
--   * datasets.version_tracks: the tracks each dataset version holds (written by the export),
--     so an erasure finds exactly the versions with the subject.
--   * audit.anchors: when retention drops a month of the audit log, the chain's last link
--     there, so audit.verify_chain still checks the rest from a known hash.
-- See docs/operations.md ("Retention, legal hold and erasure").
-- depends: 0027_audit_chain
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

CREATE SCHEMA records;
COMMENT ON SCHEMA records IS 'Retention, legal holds, erasure and tombstones (issue 19).';

-- ======================================================================= retention
CREATE TABLE records.categories (
  category    text PRIMARY KEY CHECK (category ~ '^[a-z][a-z_]{0,40}$'),
  position    bigint NOT NULL UNIQUE,    -- order in which a run applies them
  description text NOT NULL
);
INSERT INTO records.categories (category, position, description) VALUES
  ('track_points', 1, 'ingest.track_points and ingest.poses, by point time'),
  ('features', 2, 'features.kinematics, change_points and zone_presence, by point time'),
  ('candidates', 3, 'candidates.candidates and their review rows, by end time; a candidate '
                    'that became an event is kept as long as its event'),
  ('events', 4, 'events.events, by end time'),
  ('dataset_files', 5, 'the stored objects of dataset versions, by creation time; the '
                       'version rows stay as the record'),
  ('audit', 6, 'audit.log, by whole month (its chain is anchored where a month goes)');

-- A plan's default; no row or keep NULL: kept until someone sets a retention.
CREATE TABLE records.plan_retention (
  plan_id  text NOT NULL REFERENCES core.plans ON DELETE CASCADE,
  category text NOT NULL REFERENCES records.categories,
  keep     interval CHECK (keep >= interval '1 day'),
  PRIMARY KEY (plan_id, category)
);
INSERT INTO records.plan_retention (plan_id, category, keep)
SELECT p.plan_id, d.category, d.keep::interval
FROM core.plans p
JOIN (VALUES
  ('free', 'track_points', '30 days'), ('free', 'features', '30 days'),
  ('free', 'candidates', '90 days'), ('free', 'events', '1 year'),
  ('free', 'dataset_files', '90 days'), ('free', 'audit', '1 year'),
  ('team', 'track_points', '90 days'), ('team', 'features', '90 days'),
  ('team', 'candidates', '1 year'), ('team', 'events', '3 years'),
  ('team', 'dataset_files', '2 years'), ('team', 'audit', '3 years'),
  ('enterprise', 'track_points', '1 year'), ('enterprise', 'features', '1 year'),
  ('enterprise', 'candidates', '2 years'), ('enterprise', 'events', NULL),
  ('enterprise', 'dataset_files', NULL), ('enterprise', 'audit', '7 years')
) AS d (plan_id, category, keep) ON d.plan_id = p.plan_id;

-- A project's own retention of a category (keep NULL: forever), set by its project_admin
-- or an operator, with why.
CREATE TABLE records.project_retention (
  project_id uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  category   text NOT NULL REFERENCES records.categories,
  keep       interval CHECK (keep >= interval '1 day'),
  set_by     text NOT NULL,
  reason     text NOT NULL,
  set_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, category)
);

-- One application of retention (pg_cron nightly, or `secinf retention run`).
CREATE TABLE records.retention_runs (
  run_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  started_by  text NOT NULL,
  status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'error')),
  error       text,
  rows        bigint NOT NULL DEFAULT 0,
  chunks      bigint NOT NULL DEFAULT 0,
  held        bigint NOT NULL DEFAULT 0   -- steps skipped, or narrowed, for a legal hold
);

-- What one run did per project, category and table: the cut-off, how (drop_chunks, delete,
-- drop_partition, expire), how much and how long.
CREATE TABLE records.retention_steps (
  run_id     bigint NOT NULL REFERENCES records.retention_runs ON DELETE CASCADE,
  step       bigint NOT NULL,
  project_id uuid,                       -- NULL: a cluster-wide step (a dropped chunk)
  category   text NOT NULL REFERENCES records.categories,
  relation   text NOT NULL,
  method     text NOT NULL CHECK (method IN ('drop_chunks', 'delete', 'drop_partition',
                                             'expire', 'held')),
  cutoff     timestamptz,
  rows       bigint NOT NULL DEFAULT 0,
  chunks     bigint NOT NULL DEFAULT 0,
  seconds    double precision NOT NULL DEFAULT 0,
  details    jsonb NOT NULL DEFAULT '{}',
  PRIMARY KEY (run_id, step)
);
CREATE INDEX retention_steps_project_idx ON records.retention_steps (project_id, run_id);

-- ======================================================================= legal holds
-- Active while lifted_at is NULL. Scope: the whole project, one source, and/or a time range
-- (either bound open). Projects and sources under a hold cannot be deleted (RESTRICT).
CREATE TABLE records.holds (
  hold_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id  uuid NOT NULL REFERENCES core.projects ON DELETE RESTRICT,
  source_id   bigint REFERENCES ingest.sources ON DELETE RESTRICT,
  from_ts     timestamptz,
  to_ts       timestamptz,
  reason      text NOT NULL CHECK (length(btrim(reason)) BETWEEN 3 AND 500),
  set_by      text NOT NULL,
  set_at      timestamptz NOT NULL DEFAULT now(),
  lifted_by   text,
  lifted_at   timestamptz,
  lift_reason text,
  CONSTRAINT holds_range CHECK (from_ts IS NULL OR to_ts IS NULL OR from_ts < to_ts),
  CONSTRAINT holds_lifted_whole CHECK ((lifted_at IS NULL) = (lifted_by IS NULL)
                                       AND (lifted_at IS NULL) = (lift_reason IS NULL))
);
CREATE INDEX holds_active_idx ON records.holds (project_id, source_id) WHERE lifted_at IS NULL;

-- ======================================================================= erasure
-- A customer's subject (a person, as a hash they chose) linked to tracks of a source.
CREATE TABLE records.subjects (
  project_id   uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  subject_hash text NOT NULL CHECK (subject_hash ~ '^[A-Za-z0-9_:+/=.-]{8,128}$'),
  source_id    bigint NOT NULL REFERENCES ingest.sources ON DELETE CASCADE,
  track_id     text NOT NULL CHECK (length(track_id) BETWEEN 1 AND 200),
  linked_by    text NOT NULL,
  linked_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_id, track_id, subject_hash)
);
CREATE INDEX subjects_hash_idx ON records.subjects (project_id, subject_hash);

-- One erasure: what was asked, its progress and, once done, what it deleted (counts per
-- table, dataset versions superseded or deleted). Never the data. No foreign keys: a
-- tombstone outlives its project and source by design; it is deleted only after keep_until.
CREATE TABLE records.tombstones (
  tombstone_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id   uuid NOT NULL,
  subject_kind text NOT NULL CHECK (subject_kind IN ('track', 'subject')),
  subject      text NOT NULL,            -- the track id, or the subject hash
  source_id    bigint,                   -- for a track; NULL for a subject
  tracks       jsonb NOT NULL CHECK (jsonb_typeof(tracks) = 'array'),  -- [{source_id, track_id}]
  reason       text NOT NULL CHECK (length(btrim(reason)) BETWEEN 3 AND 500),
  requested_by text NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT now(),
  address      text,
  status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done')),
  job_id       bigint,
  counts       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(counts) = 'object'),
  versions_superseded jsonb NOT NULL DEFAULT '[]',
  versions_deleted    jsonb NOT NULL DEFAULT '[]',
  finished_at  timestamptz,
  keep_until   timestamptz NOT NULL DEFAULT now() + interval '7 years'
);
CREATE INDEX tombstones_project_idx ON records.tombstones (project_id, requested_at);

-- Published versions that hold an erased subject: the version is immutable, so the mark
-- is kept beside it.
CREATE TABLE records.superseded_versions (
  version_id    bigint PRIMARY KEY REFERENCES datasets.versions ON DELETE CASCADE,
  project_id    uuid NOT NULL,
  tombstone_id  bigint NOT NULL REFERENCES records.tombstones,
  superseded_at timestamptz NOT NULL DEFAULT now()
);

-- Versions whose stored objects retention has taken (the rows stay as the record).
CREATE TABLE records.expired_versions (
  version_id         bigint PRIMARY KEY REFERENCES datasets.versions ON DELETE CASCADE,
  project_id         uuid NOT NULL,
  run_id             bigint REFERENCES records.retention_runs ON DELETE SET NULL,
  storage_path       text NOT NULL,
  expired_at         timestamptz NOT NULL DEFAULT now(),
  job_id             bigint,
  objects_deleted_at timestamptz
);

-- ======================================================================= dataset tracks
-- The tracks of each dataset version (the actors of its events), written with the draft.
CREATE TABLE datasets.version_tracks (
  project_id uuid NOT NULL,
  version_id bigint NOT NULL,
  source_id  bigint NOT NULL,
  track_id   text NOT NULL,
  PRIMARY KEY (version_id, source_id, track_id),
  FOREIGN KEY (project_id, version_id) REFERENCES datasets.versions (project_id, version_id)
    ON DELETE CASCADE
);
CREATE INDEX version_tracks_track_idx ON datasets.version_tracks (source_id, track_id);
-- Like a version's files: nothing is added to, changed in or removed from a published one.
CREATE TRIGGER version_tracks_guard
  BEFORE INSERT OR UPDATE OR DELETE ON datasets.version_tracks
  FOR EACH ROW EXECUTE FUNCTION datasets.guard_version_part();
CREATE TRIGGER version_tracks_no_truncate BEFORE TRUNCATE ON datasets.version_tracks
  FOR EACH STATEMENT EXECUTE FUNCTION datasets.guard_truncate();

-- ======================================================================= audit anchors
-- The last link of each audit month retention dropped: verify_chain starts the rest there.
CREATE TABLE audit.anchors (
  partition  text PRIMARY KEY,
  from_at    timestamptz NOT NULL,
  to_at      timestamptz NOT NULL,
  rows       bigint NOT NULL,
  first_seq  bigint NOT NULL,
  last_seq   bigint NOT NULL,
  last_hash  bytea NOT NULL,
  run_id     bigint,
  dropped_by text NOT NULL,
  dropped_at timestamptz NOT NULL DEFAULT now(),
  CHECK (first_seq <= last_seq)
);

-- ======================================================================= row security
ALTER TABLE records.project_retention ENABLE ROW LEVEL SECURITY;
ALTER TABLE records.project_retention FORCE ROW LEVEL SECURITY;
ALTER TABLE records.retention_steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE records.retention_steps FORCE ROW LEVEL SECURITY;
ALTER TABLE records.holds ENABLE ROW LEVEL SECURITY;
ALTER TABLE records.holds FORCE ROW LEVEL SECURITY;
ALTER TABLE records.subjects ENABLE ROW LEVEL SECURITY;
ALTER TABLE records.subjects FORCE ROW LEVEL SECURITY;
ALTER TABLE records.tombstones ENABLE ROW LEVEL SECURITY;
ALTER TABLE records.tombstones FORCE ROW LEVEL SECURITY;
ALTER TABLE records.superseded_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE records.superseded_versions FORCE ROW LEVEL SECURITY;
ALTER TABLE records.expired_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE records.expired_versions FORCE ROW LEVEL SECURITY;

RESET ROLE;
