-- Erasure, the right to be forgotten (migration 0028). One actor — a track of a source, or
-- every track a customer linked to a subject hash (records.subjects) — is removed from
-- track points, poses, features, candidates (with their review rows and training
-- examples), events and unpublished dataset versions. Published versions are immutable:
-- those holding the actor are marked superseded (records.superseded_versions). What
-- remains is the tombstone: what was deleted, when, by whom and why, with counts; never the
-- data. Kept 7 years, then dropped by retention.
--
-- records.request_erasure checks the request (the tracks exist, no legal hold covers them)
-- and writes the pending tombstone; records.erase_step then deletes in bounded batches,
-- each its own transaction, so a large erasure runs as the queue job `erase_subject` with
-- progress (workers/records/erasure.py; `secinf erase` runs the same steps in place).
-- A step that finds nothing left finishes the tombstone. See docs/operations.md ("Erasure").

-- ======================================================================= tombstones
-- Tombstones are never changed by hand and never deleted before keep_until: only the
-- erasure's own steps move one forward (secinf.erasing), only retention drops old ones
-- (secinf.tombstone_expiry).
CREATE OR REPLACE FUNCTION records.guard_tombstone() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF tg_op = 'DELETE' THEN
    IF current_setting('secinf.tombstone_expiry', true) = 'on' AND OLD.keep_until < now() THEN
      RETURN OLD;
    END IF;
  ELSIF current_setting('secinf.erasing', true) = 'on' AND OLD.status <> 'done'
        AND (NEW.tombstone_id, NEW.project_id, NEW.subject_kind, NEW.subject, NEW.source_id,
             NEW.tracks, NEW.reason, NEW.requested_by, NEW.requested_at, NEW.keep_until)
            IS NOT DISTINCT FROM
            (OLD.tombstone_id, OLD.project_id, OLD.subject_kind, OLD.subject, OLD.source_id,
             OLD.tracks, OLD.reason, OLD.requested_by, OLD.requested_at, OLD.keep_until) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'records.tombstones keeps what was erased for 7 years (% refused)', tg_op
    USING ERRCODE = '42501';
END
$$;
DROP TRIGGER IF EXISTS tombstones_guard ON records.tombstones;
CREATE TRIGGER tombstones_guard
  BEFORE UPDATE OR DELETE ON records.tombstones
  FOR EACH ROW EXECUTE FUNCTION records.guard_tombstone();
DROP TRIGGER IF EXISTS tombstones_no_truncate ON records.tombstones;
CREATE TRIGGER tombstones_no_truncate
  BEFORE TRUNCATE ON records.tombstones
  FOR EACH STATEMENT EXECUTE FUNCTION records.guard_tombstone();

-- ======================================================================= subjects
-- Link subject hashes to tracks: p_links is [{"source": name, "track_id": "12",
-- "subject": hash}, …]. project_admin of p or an operator; all or nothing; audited (the
-- count, never the hashes). Returns the links added (a repeated link adds none).
CREATE OR REPLACE FUNCTION records.link_subjects(p_project uuid, p_links jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_bad record;
  n bigint;
BEGIN
  PERFORM auth.require(p_project, ARRAY['project_admin']);
  IF jsonb_typeof(p_links) IS DISTINCT FROM 'array' OR jsonb_array_length(p_links) = 0 THEN
    RAISE EXCEPTION 'links must be a non-empty JSON array of {"source", "track_id", "subject"}'
      USING ERRCODE = '22023';
  END IF;
  SELECT x.n, x.l INTO v_bad
  FROM jsonb_array_elements(p_links) WITH ORDINALITY AS x (l, n)
  LEFT JOIN ingest.sources s ON s.project_id = p_project AND s.name = x.l ->> 'source'
  WHERE s.source_id IS NULL OR coalesce(x.l ->> 'track_id', '') = ''
     OR coalesce(x.l ->> 'subject', '') !~ '^[A-Za-z0-9_:+/=.-]{8,128}$'
  ORDER BY x.n LIMIT 1;
  IF v_bad.n IS NOT NULL THEN
    RAISE EXCEPTION 'link %: %', v_bad.n,
      CASE WHEN NOT EXISTS (SELECT FROM ingest.sources s WHERE s.project_id = p_project
                            AND s.name = v_bad.l ->> 'source')
           THEN format('no source "%s" in this project', v_bad.l ->> 'source')
           WHEN coalesce(v_bad.l ->> 'track_id', '') = '' THEN 'track_id is missing'
           ELSE 'subject must be 8-128 characters of letters, digits and _:+/=.- (a hash, '
                'never a name)' END
      USING ERRCODE = '22023', HINT = 'Nothing was linked; fix the link and send them all again.';
  END IF;
  INSERT INTO records.subjects (project_id, subject_hash, source_id, track_id, linked_by)
  SELECT DISTINCT p_project, x.l ->> 'subject', s.source_id, x.l ->> 'track_id', auth.subject()
  FROM jsonb_array_elements(p_links) x (l)
  JOIN ingest.sources s ON s.project_id = p_project AND s.name = x.l ->> 'source'
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM audit.record(p_project, 'subject.link', NULL,
                       jsonb_build_object('links', jsonb_array_length(p_links), 'added', n));
  RETURN n;
END
$$;

-- ======================================================================= request
-- Ask to erase one actor of project p: a track (p_source name and p_track) or a subject
-- hash (every track linked to it). Checks that it exists and that no legal hold covers
-- any of its tracks' time, then writes the pending tombstone (and the audit row).
-- project_admin of p or an operator. Returns the tombstone.
CREATE OR REPLACE FUNCTION records.request_erasure(p_project uuid, p_source text,
                                                  p_track text, p_subject text,
                                                  p_reason text)
RETURNS records.tombstones
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_source bigint;
  v_tracks jsonb;
  v_stone records.tombstones;
  t record;
BEGIN
  PERFORM auth.require(p_project, ARRAY['project_admin']);
  IF (p_track IS NULL) = (p_subject IS NULL) THEN
    RAISE EXCEPTION 'name one actor to erase: a track (source and track id) or a subject hash'
      USING ERRCODE = '22023';
  END IF;
  IF p_reason IS NULL OR length(btrim(p_reason)) NOT BETWEEN 3 AND 500 THEN
    RAISE EXCEPTION 'say why the actor is erased (reason, 3-500 characters)'
      USING ERRCODE = '22023', HINT = 'For example the request''s ticket number.';
  END IF;
  IF p_track IS NOT NULL THEN
    SELECT s.source_id INTO v_source FROM ingest.sources s
    WHERE s.project_id = p_project AND s.name = p_source;
    IF v_source IS NULL THEN
      RAISE EXCEPTION 'no source "%" in this project', coalesce(p_source, '')
        USING ERRCODE = 'P0002', HINT = 'Give the source''s name as ingested (--source).';
    END IF;
    v_tracks := jsonb_build_array(jsonb_build_object('source_id', v_source, 'track_id', p_track));
  ELSE
    SELECT jsonb_agg(jsonb_build_object('source_id', x.source_id, 'track_id', x.track_id)
                     ORDER BY x.source_id, x.track_id)
      INTO v_tracks
    FROM records.subjects x WHERE x.project_id = p_project AND x.subject_hash = p_subject;
    IF v_tracks IS NULL THEN
      RAISE EXCEPTION 'no tracks are linked to subject %', p_subject USING ERRCODE = 'P0002',
        HINT = 'Link them first (api.link_subjects, `secinf subjects link`), or erase a '
               'track by its source and id.';
    END IF;
  END IF;
  -- Each track: it must exist somewhere, and no hold may cover its time.
  FOR t IN
    SELECT (e ->> 'source_id')::bigint AS source_id, e ->> 'track_id' AS track_id
    FROM jsonb_array_elements(v_tracks) e
  LOOP
    DECLARE
      v_span record;
    BEGIN
      SELECT min(p.ts) AS first, max(p.ts) AS last INTO v_span FROM ingest.track_points p
      WHERE p.source_id = t.source_id AND p.track_id = t.track_id;
      IF v_span.first IS NULL AND p_track IS NOT NULL
         AND NOT EXISTS (SELECT FROM candidates.candidates c WHERE c.source_id = t.source_id
                         AND jsonb_path_query_array(c.actors, '$.*') @> to_jsonb(ARRAY[t.track_id]))
         AND NOT EXISTS (SELECT FROM events.events e WHERE e.source_id = t.source_id
                         AND jsonb_path_query_array(e.actors, '$.*') @> to_jsonb(ARRAY[t.track_id])) THEN
        RAISE EXCEPTION 'source "%" has no track "%"', p_source, p_track USING ERRCODE = 'P0002',
          HINT = 'Track ids are as written in the ingested file.';
      END IF;
      PERFORM records.refuse_if_held(p_project, t.source_id, v_span.first, v_span.last,
                                     'erase track ' || t.track_id);
    END;
  END LOOP;
  INSERT INTO records.tombstones (project_id, subject_kind, subject, source_id, tracks, reason,
                                  requested_by, address)
  VALUES (p_project, CASE WHEN p_track IS NOT NULL THEN 'track' ELSE 'subject' END,
          coalesce(p_track, p_subject), v_source, v_tracks, btrim(p_reason), auth.subject(),
          audit.caller_address())
  RETURNING * INTO v_stone;
  PERFORM audit.record(p_project, 'erasure.request', 'tombstone ' || v_stone.tombstone_id,
                       jsonb_build_object('tombstone_id', v_stone.tombstone_id,
                                          'kind', v_stone.subject_kind,
                                          'tracks', jsonb_array_length(v_tracks),
                                          'reason', v_stone.reason));
  RETURN v_stone;
END
$$;

-- ======================================================================= steps
-- The tables one actor is erased from, in the order that keeps every foreign key whole
-- (events reference their candidate's decision; candidates take their review rows and
-- training examples with them). Each condition is on one track: $1 source_id, $2 track_id.
CREATE OR REPLACE FUNCTION records.erasure_tables()
RETURNS TABLE (ord integer, relation regclass, condition text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  VALUES
    (1, 'events.events'::regclass,
     'source_id = $1::bigint AND jsonb_path_query_array(actors, ''$.*'') @> to_jsonb(ARRAY[$2::text])'),
    (2, 'candidates.candidates'::regclass,
     'source_id = $1::bigint AND jsonb_path_query_array(actors, ''$.*'') @> to_jsonb(ARRAY[$2::text])'),
    (3, 'features.zone_presence'::regclass, 'source_id = $1::bigint AND track_id = $2::text'),
    (4, 'features.change_points'::regclass, 'source_id = $1::bigint AND track_id = $2::text'),
    (5, 'features.kinematics'::regclass, 'source_id = $1::bigint AND track_id = $2::text'),
    (6, 'ingest.poses'::regclass, 'source_id = $1::bigint AND track_id = $2::text'),
    (7, 'ingest.track_points'::regclass, 'source_id = $1::bigint AND track_id = $2::text'),
    (8, 'records.subjects'::regclass, 'source_id = $1::bigint AND track_id = $2::text')
$$;

-- Delete up to p_limit rows of one track from one table, by key rather than ctid (the
-- hypertables span chunks); candidates count the review rows they take with them.
CREATE OR REPLACE FUNCTION records.erase_batch(p_relation regclass, p_condition text,
                                              p_source bigint, p_track text, p_limit integer,
                                              OUT deleted bigint, OUT cascaded jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids bigint[];
BEGIN
  cascaded := '{}';
  IF p_relation = 'candidates.candidates'::regclass THEN
    EXECUTE format('SELECT array_agg(candidate_id) FROM (SELECT candidate_id FROM %s WHERE %s '
                   'LIMIT %s) x', p_relation, p_condition, p_limit)
      INTO v_ids USING p_source::text, p_track;
    IF v_ids IS NULL THEN
      deleted := 0;
      RETURN;
    END IF;
    cascaded := jsonb_build_object(
      'review.decisions', (SELECT count(*) FROM review.decisions d WHERE d.candidate_id = ANY (v_ids)),
      'review.second_opinions', (SELECT count(*) FROM review.second_opinions o
                                 WHERE o.candidate_id = ANY (v_ids)),
      'scoring.examples', (SELECT count(*) FROM scoring.examples x WHERE x.candidate_id = ANY (v_ids)));
    DELETE FROM candidates.candidates c WHERE c.candidate_id = ANY (v_ids);
    GET DIAGNOSTICS deleted = ROW_COUNT;
  ELSIF p_relation IN ('events.events'::regclass) THEN
    EXECUTE format('DELETE FROM %1$s WHERE event_id IN (SELECT event_id FROM %1$s WHERE %2$s '
                   'LIMIT %3$s)', p_relation, p_condition, p_limit)
      USING p_source::text, p_track;
    GET DIAGNOSTICS deleted = ROW_COUNT;
  ELSIF p_relation IN ('ingest.track_points'::regclass, 'ingest.poses'::regclass,
                       'features.kinematics'::regclass) THEN
    -- (source_id, track_id, ts, frame) is each row's key (kinematics: one row per point).
    EXECUTE format('DELETE FROM %1$s t USING (SELECT ts, frame FROM %1$s WHERE %2$s '
                   'ORDER BY ts LIMIT %3$s) x WHERE t.source_id = $1::bigint '
                   'AND t.track_id = $2::text AND t.ts = x.ts AND t.frame = x.frame',
                   p_relation, p_condition, p_limit)
      USING p_source::text, p_track;
    GET DIAGNOSTICS deleted = ROW_COUNT;
  ELSE
    deleted := records.delete_batch(p_relation, p_condition, p_limit, p_source::text, p_track);
  END IF;
END
$$;

-- One step of an erasure: up to p_limit rows from the first table that still holds one of
-- the tombstone's tracks. Counts add up on the tombstone; a step that finds nothing left
-- finishes it (dataset versions, status done, the audit row). Returns {done, relation,
-- deleted, counts, versions_deleted (storage paths for the caller to remove)}.
CREATE OR REPLACE FUNCTION records.erase_step(p_tombstone bigint, p_limit integer DEFAULT 50000)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_stone records.tombstones;
  t record;
  x record;
  v_got record;
  v_counts jsonb;
  v_key text;
BEGIN
  SELECT * INTO v_stone FROM records.tombstones s WHERE s.tombstone_id = p_tombstone FOR UPDATE;
  IF v_stone.tombstone_id IS NULL OR NOT auth.can_access(v_stone.project_id) THEN
    RAISE EXCEPTION 'no erasure %', p_tombstone USING ERRCODE = 'P0002';
  END IF;
  IF v_stone.status = 'done' THEN
    RETURN jsonb_build_object('done', true, 'deleted', 0, 'counts', v_stone.counts,
                              'versions_deleted', v_stone.versions_deleted);
  END IF;
  PERFORM set_config('secinf.erasing', 'on', true);
  FOR t IN
    SELECT (e ->> 'source_id')::bigint AS source_id, e ->> 'track_id' AS track_id
    FROM jsonb_array_elements(v_stone.tracks) e
  LOOP
    -- A hold set after the request still wins.
    PERFORM records.refuse_if_held(v_stone.project_id, t.source_id, NULL, NULL,
                                   'erase track ' || t.track_id);
    FOR x IN SELECT * FROM records.erasure_tables() ORDER BY ord LOOP
      SELECT * INTO v_got FROM records.erase_batch(x.relation, x.condition, t.source_id,
                                                   t.track_id, p_limit);
      IF v_got.deleted > 0 THEN
        v_key := x.relation::text;
        v_counts := v_stone.counts || jsonb_build_object(
          v_key, coalesce((v_stone.counts ->> v_key)::bigint, 0) + v_got.deleted);
        SELECT v_counts || coalesce(jsonb_object_agg(k, coalesce((v_counts ->> k)::bigint, 0)
                                                       + v::bigint), '{}')
          INTO v_counts
        FROM jsonb_each_text(v_got.cascaded) c (k, v) WHERE v::bigint > 0;
        UPDATE records.tombstones s SET status = 'running', counts = v_counts
        WHERE s.tombstone_id = p_tombstone;
        RETURN jsonb_build_object('done', false, 'relation', v_key, 'deleted', v_got.deleted,
                                  'counts', v_counts);
      END IF;
    END LOOP;
  END LOOP;
  RETURN records.erase_finish(v_stone);
END
$$;

-- The last step: dataset versions. Unpublished ones (drafts, blocked) holding a track go
-- (their storage paths returned, for the caller to delete the objects); published ones
-- are marked superseded. A version holds a track when the export recorded it
-- (datasets.version_tracks) or, for versions exported before those were recorded, when
-- its manifest lists the track's source.
CREATE OR REPLACE FUNCTION records.erase_finish(p_stone records.tombstones) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids bigint[];
  v_superseded jsonb;
  v_deleted jsonb;
BEGIN
  v_ids := ARRAY(
    SELECT DISTINCT v.version_id
    FROM jsonb_array_elements(p_stone.tracks) e
    JOIN ingest.sources s ON s.source_id = (e ->> 'source_id')::bigint
    JOIN datasets.versions v ON v.project_id = p_stone.project_id
    WHERE EXISTS (SELECT FROM datasets.version_tracks vt WHERE vt.version_id = v.version_id
                  AND vt.source_id = s.source_id AND vt.track_id = e ->> 'track_id')
       OR (NOT EXISTS (SELECT FROM datasets.version_tracks vt WHERE vt.version_id = v.version_id)
           AND v.manifest -> 'split' -> 'sources' ? s.name));
  INSERT INTO records.superseded_versions (version_id, project_id, tombstone_id)
  SELECT v.version_id, v.project_id, p_stone.tombstone_id
  FROM datasets.versions v
  WHERE v.version_id = ANY (v_ids) AND v.status = 'published'
  ON CONFLICT (version_id) DO NOTHING;
  SELECT coalesce(jsonb_agg(jsonb_build_object('version_id', v.version_id, 'dataset', v.name,
                                               'version', v.version) ORDER BY v.version_id), '[]')
    INTO v_superseded
  FROM datasets.versions v
  WHERE v.version_id = ANY (v_ids) AND v.status = 'published';
  WITH d AS (
    DELETE FROM datasets.versions v
    WHERE v.version_id = ANY (v_ids) AND v.status <> 'published'
    RETURNING v.version_id, v.name AS dataset, v.version, v.status, v.storage_path)
  SELECT coalesce(jsonb_agg(to_jsonb(d) ORDER BY d.version_id), '[]') INTO v_deleted FROM d;
  UPDATE records.tombstones s
  SET status = 'done', finished_at = now(), versions_superseded = v_superseded,
      versions_deleted = v_deleted
  WHERE s.tombstone_id = p_stone.tombstone_id;
  PERFORM audit.record(p_stone.project_id, 'erasure.done', 'tombstone ' || p_stone.tombstone_id,
                       jsonb_build_object('tombstone_id', p_stone.tombstone_id,
                                          'counts', p_stone.counts,
                                          'versions_superseded', v_superseded,
                                          'versions_deleted', jsonb_array_length(v_deleted)));
  RETURN jsonb_build_object('done', true, 'deleted', 0, 'counts', p_stone.counts,
                            'versions_superseded', v_superseded,
                            'versions_deleted', v_deleted);
END
$$;

-- Tombstones of project p, newest first.
CREATE OR REPLACE FUNCTION records.list_tombstones(p_project uuid, p_limit integer DEFAULT 100)
RETURNS SETOF records.tombstones
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM auth.require(p_project, ARRAY['project_admin']);
  RETURN QUERY SELECT * FROM records.tombstones t WHERE t.project_id = p_project
               ORDER BY t.tombstone_id DESC LIMIT p_limit;
END
$$;
