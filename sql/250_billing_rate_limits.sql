-- secinf: run-as superuser
-- Rate limits and API request counters in shared memory (issue 18): PL/Python wrappers
-- (plpython3u is untrusted: only a superuser may create them) of plpython/rate_limits.py.
-- PostgREST runs GETs in READ ONLY transactions, so buckets and request counters live in a
-- file under /dev/shm mapped by every backend of this database, not in a table. The logic
-- around them (limits, 429s, headers, the flush) is sql/251_billing_rate_limits_api.sql.
--
-- billing.rate_limits_load compiles the module once per backend from a raw string (again
-- when the file is re-applied; the module has no triple single quotes); each wrapper keeps
-- it in its SD, and the mapped segment and the cached limits live in GD. SECURITY INVOKER:
-- only the owner may execute them (its SECURITY DEFINER functions read the caller's claims
-- themselves; a caller never names a bucket).

-- The module itself: compiled from its source once per backend (again after this file is
-- re-applied: CREATE OR REPLACE empties SD) and handed to the wrappers below through GD.
CREATE OR REPLACE FUNCTION billing.rate_limits_load() RETURNS void
LANGUAGE plpython3u VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
m = SD.get("m")
if m is None:
    import types
    m = types.ModuleType("rate_limits")
    src = r'''{{plpython:rate_limits}}'''
    # PL/Python indents every line of a body by one tab, inside this string too.
    src = "\n".join(s[1:] if s[:1] == "\t" else s for s in src.split("\n"))
    exec(compile(src, "plpython/rate_limits.py", "exec"), m.__dict__)
    SD["m"] = m
GD["secinf.rate_limits"] = m
$$;

-- A project's request: the daily api_requests quota, the caller's and the project's
-- buckets (p_bucket 'key:<key_id>' | 'account:<name>'; NULL: no bucket, an operator's
-- token), one request counted when admitted.
CREATE OR REPLACE FUNCTION billing.rate_admit(p_project uuid, p_bucket text,
  OUT ok boolean, OUT reason text, OUT scope text, OUT "limit" bigint,
  OUT per_second double precision, OUT remaining bigint, OUT reset_s bigint,
  OUT retry_after_s bigint, OUT used bigint, OUT quota bigint, OUT dropped boolean)
LANGUAGE plpython3u VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
m = SD.get("m")
if m is None:  # the module, compiled once per backend (billing.rate_limits_load)
    plpy.execute("SELECT billing.rate_limits_load()")
    m = SD["m"] = GD["secinf.rate_limits"]
return m.admit_request(plpy, GD, p_project, p_bucket)
$$;

-- One bucket for callers without a project: p_scope 'anon' (every anonymous request, one
-- bucket) or 'exchange' (api.exchange_key per key lookup prefix p_name); limits from
-- pipeline.settings (rate_anon_*, rate_exchange_*). Nothing is counted.
CREATE OR REPLACE FUNCTION billing.rate_take(p_scope text, p_name text,
  OUT ok boolean, OUT reason text, OUT scope text, OUT "limit" bigint,
  OUT per_second double precision, OUT remaining bigint, OUT reset_s bigint,
  OUT retry_after_s bigint, OUT used bigint, OUT quota bigint, OUT dropped boolean)
LANGUAGE plpython3u VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
m = SD.get("m")
if m is None:  # the module, compiled once per backend (billing.rate_limits_load)
    plpy.execute("SELECT billing.rate_limits_load()")
    m = SD["m"] = GD["secinf.rate_limits"]
if p_scope not in ("anon", "exchange"):
    plpy.error(f"unknown rate-limit scope {p_scope!r}", hint="Use anon or exchange.")
return m.admit_anonymous(plpy, GD, p_scope, p_name)
$$;

-- The hour counters of this database's segment that hold requests not yet known flushed.
CREATE OR REPLACE FUNCTION billing.request_counter_snapshot()
RETURNS TABLE (epoch text, project_id uuid, hour_unix bigint, n bigint)
LANGUAGE plpython3u VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
m = SD.get("m")
if m is None:  # the module, compiled once per backend (billing.rate_limits_load)
    plpy.execute("SELECT billing.rate_limits_load()")
    m = SD["m"] = GD["secinf.rate_limits"]
return [(r["epoch"], r["project_id"], r["hour"], r["n"]) for r in m.snapshot(plpy, GD)]
$$;

-- Record counts committed to billing.request_counts (a JSON array of [project, hour_unix,
-- n]) in the segment of epoch p_epoch, so their slots can be reused once the hour is over.
CREATE OR REPLACE FUNCTION billing.request_counter_mark(p_epoch text, p_committed jsonb)
RETURNS integer
LANGUAGE plpython3u VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
m = SD.get("m")
if m is None:  # the module, compiled once per backend (billing.rate_limits_load)
    plpy.execute("SELECT billing.rate_limits_load()")
    m = SD["m"] = GD["secinf.rate_limits"]
return m.mark(plpy, GD, p_epoch, p_committed)
$$;

-- This database's segment: path, epoch, creation time and slots in use by kind.
CREATE OR REPLACE FUNCTION billing.rate_segment() RETURNS jsonb
LANGUAGE plpython3u VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
m = SD.get("m")
if m is None:  # the module, compiled once per backend (billing.rate_limits_load)
    plpy.execute("SELECT billing.rate_limits_load()")
    m = SD["m"] = GD["secinf.rate_limits"]
return m.info(plpy, GD)
$$;

-- Remove the segments of this cluster's dropped databases; returns the files removed.
CREATE OR REPLACE FUNCTION billing.rate_segments_gc() RETURNS text[]
LANGUAGE plpython3u VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
m = SD.get("m")
if m is None:  # the module, compiled once per backend (billing.rate_limits_load)
    plpy.execute("SELECT billing.rate_limits_load()")
    m = SD["m"] = GD["secinf.rate_limits"]
return m.collect_garbage(plpy, GD)
$$;

-- Superuser-owned, so the owner's default privileges do not cover them: revoke here; the
-- owner's functions call them (grants of the callers: sql/976_grants_billing_rate_limits.sql).
REVOKE EXECUTE ON FUNCTION billing.rate_limits_load(), billing.rate_admit(uuid, text),
  billing.rate_take(text, text), billing.request_counter_snapshot(),
  billing.request_counter_mark(text, jsonb), billing.rate_segment(),
  billing.rate_segments_gc() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION billing.rate_limits_load(), billing.rate_admit(uuid, text),
  billing.rate_take(text, text), billing.request_counter_snapshot(),
  billing.request_counter_mark(text, jsonb), billing.rate_segment(),
  billing.rate_segments_gc() TO secinf_owner;
