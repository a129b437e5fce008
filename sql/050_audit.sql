-- The audit log: append-only, hash-chained, in monthly partitions (migration 0026).
--
-- Rows are written through audit.record() (and a few owner functions that insert directly);
-- nobody may change a row's content or delete one, not even the owner's functions. Each row
-- is sealed into the chain once every transaction that could still add an older row has
-- ended (audit.seal, every minute by pg_cron): chain_seq is its place, prev_hash the hash of
-- the row before it, row_hash = sha256(prev_hash || the row's canonical content).
-- audit.verify_chain() recomputes every link and names the first broken one. See
-- docs/operations.md ("Audit log").

-- ======================================================================= content
-- The caller's address as PostgREST passes it on (X-Forwarded-For's first hop, else the
-- connection's peer, else 'local' for a socket).
CREATE OR REPLACE FUNCTION audit.caller_address() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(
    nullif(trim(split_part(coalesce(nullif(current_setting('request.headers', true), ''),
                                    '{}')::jsonb ->> 'x-forwarded-for', ',', 1)), ''),
    host(inet_client_addr()), 'local')
$$;

-- One field of a row's canonical text: its length, a colon and itself ('-' for NULL), so
-- no field's content can pass for a separator.
-- (No SET search_path on these two, so the planner inlines them: every name is schema-
-- qualified instead.)
CREATE OR REPLACE FUNCTION audit.field(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT coalesce(pg_catalog.length(p)::text OPERATOR(pg_catalog.||) ':'
                     OPERATOR(pg_catalog.||) p, '-') $$;

-- The hash of one row given the hash before it: sha256 over prev_hash and the row's
-- canonical text (time as integer microseconds since the epoch and jsonb's canonical text,
-- so no session setting changes it).
CREATE OR REPLACE FUNCTION audit.row_hash(p_prev bytea, p_seq bigint, p_id bigint,
                                          p_at timestamptz, p_project uuid, p_actor text,
                                          p_action text, p_target text, p_details jsonb,
                                          p_address text)
RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE  -- STABLE like concat_ws, or the planner will not inline it
AS $$
  SELECT pg_catalog.sha256(coalesce(p_prev, '\x'::bytea) OPERATOR(pg_catalog.||)
    pg_catalog.convert_to(pg_catalog.concat_ws('|',
      p_seq, p_id, (pg_catalog.date_part('epoch', p_at) OPERATOR(pg_catalog.*) 1000000)::bigint,
      audit.field(p_project::text), audit.field(p_actor), audit.field(p_action),
      audit.field(p_target), audit.field(p_details::text), audit.field(p_address)), 'UTF8'))
$$;

-- ======================================================================= append-only
-- Refuse UPDATE and DELETE on audit.log, whoever asks; the one change allowed is sealing
-- an unsealed row (its chain columns only, by audit.seal, which sets secinf.audit_sealing
-- for its transaction). A wrong seal is caught by audit.verify_chain.
CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF tg_op = 'UPDATE' AND OLD.chain_seq IS NULL AND NEW.chain_seq IS NOT NULL
     AND current_setting('secinf.audit_sealing', true) = 'on'
     AND (NEW.audit_id, NEW.at, NEW.project_id, NEW.actor, NEW.action, NEW.target,
          NEW.details, NEW.address)
         IS NOT DISTINCT FROM (OLD.audit_id, OLD.at, OLD.project_id, OLD.actor, OLD.action,
                               OLD.target, OLD.details, OLD.address) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit.log is append-only (% refused)', tg_op USING ERRCODE = '42501';
END
$$;

DROP TRIGGER IF EXISTS audit_log_append_only ON audit.log;
CREATE TRIGGER audit_log_append_only
  BEFORE UPDATE OR DELETE ON audit.log
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit.log;
CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON audit.log
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- Every new row: unsealed, with the caller's address where the writer gave none.
CREATE OR REPLACE FUNCTION audit.on_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  NEW.address := coalesce(NEW.address, NEW.details ->> 'address', audit.caller_address());
  NEW.chain_seq := NULL;
  NEW.prev_hash := NULL;
  NEW.row_hash := NULL;
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS audit_log_on_insert ON audit.log;
CREATE TRIGGER audit_log_on_insert
  BEFORE INSERT ON audit.log
  FOR EACH ROW EXECUTE FUNCTION audit.on_insert();

-- ======================================================================= writing
-- Append one entry, attributed to the caller.
CREATE OR REPLACE FUNCTION audit.record(
  p_project uuid, p_action text, p_target text, p_details jsonb DEFAULT '{}'
) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO audit.log (project_id, actor, action, target, details)
  VALUES (p_project, auth.subject(), p_action, p_target, coalesce(p_details, '{}'))
$$;

-- ======================================================================= partitions
-- Monthly partitions from this month to p_ahead months ahead (pg_cron runs it daily, so
-- rows land in audit.log_default only if it stopped for months; a month whose rows are
-- already there keeps them there, with a warning). Returns the partitions created.
CREATE OR REPLACE FUNCTION audit.ensure_partitions(p_ahead integer DEFAULT 3) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
  v_name text;
  n integer := 0;
BEGIN
  WHILE m <= (date_trunc('month', now() AT TIME ZONE 'UTC')
              + make_interval(months => p_ahead))::date LOOP
    v_name := 'log_' || to_char(m, 'YYYY_MM');
    IF to_regclass('audit.' || v_name) IS NULL THEN
      BEGIN
        EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.log FOR VALUES FROM (%L) '
                       'TO (%L)', v_name, (m::timestamp AT TIME ZONE 'UTC'),
                       ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
        n := n + 1;
      EXCEPTION WHEN check_violation THEN
        RAISE WARNING 'audit.log_default holds rows of %; that month stays there',
          to_char(m, 'YYYY-MM');
      END;
    END IF;
    m := (m + interval '1 month')::date;
  END LOOP;
  RETURN n;
END
$$;

-- ======================================================================= the chain
-- Seal every row whose transaction, and every transaction that could still insert an older
-- row, has ended (the horizon): in order of time and id, each gets the next chain_seq, the previous row's
-- hash and its own. One sealer at a time (an advisory lock); at most p_limit rows per call.
-- Returns the rows sealed.
CREATE OR REPLACE FUNCTION audit.seal(p_limit integer DEFAULT 100000) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  -- Rows inserted by a transaction older than every one of this database still running
  -- are final: none can appear later (audit.write_horizon, sql/060_audit_horizon.sql).
  v_horizon bigint := audit.write_horizon();
  v_seq bigint;
  v_hash bytea;
  v_ids bigint[];
  v_ats timestamptz[];
  v_projects uuid[];
  v_actors text[];
  v_actions text[];
  v_targets text[];
  v_details jsonb[];
  v_addresses text[];
  v_seqs bigint[] := '{}';
  v_prevs bytea[] := '{}';
  v_hashes bytea[] := '{}';
  v_n integer;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('audit.seal', 0));
  SELECT l.chain_seq, l.row_hash INTO v_seq, v_hash
  FROM audit.log l WHERE l.chain_seq IS NOT NULL ORDER BY l.chain_seq DESC LIMIT 1;
  v_seq := coalesce(v_seq, 0);
  SELECT array_agg(x.audit_id ORDER BY x.at, x.audit_id), array_agg(x.at ORDER BY x.at, x.audit_id),
         array_agg(x.project_id ORDER BY x.at, x.audit_id),
         array_agg(x.actor ORDER BY x.at, x.audit_id),
         array_agg(x.action ORDER BY x.at, x.audit_id),
         array_agg(x.target ORDER BY x.at, x.audit_id),
         array_agg(x.details ORDER BY x.at, x.audit_id),
         array_agg(x.address ORDER BY x.at, x.audit_id)
    INTO v_ids, v_ats, v_projects, v_actors, v_actions, v_targets, v_details, v_addresses
  FROM (SELECT l.audit_id, l.at, l.project_id, l.actor, l.action, l.target, l.details,
               l.address
        FROM audit.log l
        WHERE l.chain_seq IS NULL AND age(l.xmin) > v_horizon
        ORDER BY l.at, l.audit_id
        LIMIT p_limit) x;
  v_n := coalesce(cardinality(v_ids), 0);
  IF v_n = 0 THEN
    RETURN 0;
  END IF;
  -- The chain itself is sequential: each hash takes the one before it.
  FOR i IN 1 .. v_n LOOP
    v_seqs[i] := v_seq + i;
    v_prevs[i] := v_hash;
    v_hash := audit.row_hash(v_hash, v_seq + i, v_ids[i], v_ats[i], v_projects[i],
                             v_actors[i], v_actions[i], v_targets[i], v_details[i],
                             v_addresses[i]);
    v_hashes[i] := v_hash;
  END LOOP;
  PERFORM set_config('secinf.audit_sealing', 'on', true);
  UPDATE audit.log l
  SET chain_seq = u.seq, prev_hash = u.prev, row_hash = u.hash
  FROM unnest(v_ids, v_ats, v_seqs, v_prevs, v_hashes) AS u (audit_id, at, seq, prev, hash)
  WHERE l.audit_id = u.audit_id AND l.at = u.at AND l.chain_seq IS NULL;
  PERFORM set_config('secinf.audit_sealing', 'off', true);
  RETURN v_n;
END
$$;

-- Recompute every link of the chain: each row's hash from its content and prev_hash, each
-- prev_hash against the row before, chain_seq without gaps from 1 (or, once retention
-- dropped old months, from the newest anchor's last_seq + 1 and its last_hash). Returns the rows checked,
-- the first broken chain_seq and why (NULL when whole), and the rows not sealed yet.
CREATE OR REPLACE FUNCTION audit.verify_chain(OUT rows_checked bigint, OUT first_broken bigint,
                                              OUT reason text, OUT unsealed bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH anchor AS (  -- where retention dropped the oldest months, the chain starts here
    SELECT a.last_seq, a.last_hash FROM audit.anchors a ORDER BY a.last_seq DESC LIMIT 1
  ), links AS (
    SELECT l.chain_seq,
           l.row_hash = audit.row_hash(l.prev_hash, l.chain_seq, l.audit_id, l.at,
                                       l.project_id, l.actor, l.action, l.target, l.details,
                                       l.address) AS self_ok,
           l.prev_hash IS NOT DISTINCT FROM
             coalesce(lag(l.row_hash) OVER w, (SELECT a.last_hash FROM anchor a)) AS link_ok,
           l.chain_seq = coalesce(lag(l.chain_seq) OVER w, (SELECT a.last_seq FROM anchor a), 0)
                         + 1 AS seq_ok
    FROM audit.log l
    WHERE l.chain_seq IS NOT NULL
    WINDOW w AS (ORDER BY l.chain_seq)
  ), checked AS (
    SELECT count(*) AS n,
           (array_agg(k.chain_seq ORDER BY k.chain_seq)
              FILTER (WHERE NOT (k.self_ok AND k.link_ok AND k.seq_ok)))[1] AS bad_seq,
           (array_agg(CASE WHEN NOT k.seq_ok
                             THEN 'a row is missing before it or its place is taken twice'
                           WHEN NOT k.self_ok THEN 'its content or hash was changed'
                           ELSE 'its link to the row before was changed' END
                      ORDER BY k.chain_seq)
              FILTER (WHERE NOT (k.self_ok AND k.link_ok AND k.seq_ok)))[1] AS why
    FROM links k
  )
  SELECT c.n, c.bad_seq, c.why,
         (SELECT count(*) FROM audit.log l WHERE l.chain_seq IS NULL)
  FROM checked c
$$;

-- ======================================================================= anchors
-- The anchors of dropped months (audit.anchors, written by records.drop_audit_months) are
-- as final as the rows they stand for.
CREATE OR REPLACE FUNCTION audit.refuse_anchor_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION 'audit.anchors is append-only (% refused)', tg_op USING ERRCODE = '42501';
END
$$;
DROP TRIGGER IF EXISTS audit_anchors_append_only ON audit.anchors;
CREATE TRIGGER audit_anchors_append_only
  BEFORE UPDATE OR DELETE ON audit.anchors
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_anchor_change();
DROP TRIGGER IF EXISTS audit_anchors_no_truncate ON audit.anchors;
CREATE TRIGGER audit_anchors_no_truncate
  BEFORE TRUNCATE ON audit.anchors
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_anchor_change();
