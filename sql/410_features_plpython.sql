-- secinf: run-as superuser
-- PL/Python wrapper of the CUSUM change-point detector (plpython3u is untrusted: only a
-- superuser may create it). Compute only, SECURITY INVOKER; the body is plpython/change_points.py.

DROP FUNCTION IF EXISTS features.cusum(text[], bigint[], double precision[],
                                        double precision[], jsonb);

-- Change points of many track segments at once (arrays ordered by track, segment, frame;
-- p_starts: the 0-based first index of each segment, ascending): one call per stage range,
-- never one per row. idx is 1-based into the arrays.
CREATE OR REPLACE FUNCTION features.cusum(p_starts integer[], p_speed double precision[],
                                          p_heading double precision[], p_params jsonb)
RETURNS TABLE (idx integer, signal text, direction integer, magnitude double precision,
               score double precision)
LANGUAGE plpython3u IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
{{plpython:change_points}}
import json
p = json.loads(p_params)
return detect_groups(
    p_starts or [], p_speed or [], p_heading or [],
    CusumParams(k=float(p["speed_k"]), h=float(p["speed_h"]), warmup=int(p["warmup"])),
    CusumParams(k=float(p["heading_k"]), h=float(p["heading_h"]), warmup=int(p["warmup"])),
    float(p["min_speed"]),
)
$$;
REVOKE EXECUTE ON FUNCTION features.cusum(integer[], double precision[], double precision[], jsonb)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION features.cusum(integer[], double precision[], double precision[], jsonb)
  TO secinf_owner;
