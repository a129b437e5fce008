-- GENERATED from workers/ingest/checks.py (`make ingest-checks`), the one table of
-- ingest checks (the CLI's Polars validation reads it there). Do not edit: change the
-- table and regenerate.

-- The checks of a batch's points, in the order a point's errors are listed (seq): kind
-- 'row' (each point alone: `test` names the condition, ingest.api_stage_points evaluates
-- it against `bound`) or 'batch' (the batch steps that find them); the message template's
-- {placeholders} are filled by ingest.api_message.
CREATE OR REPLACE FUNCTION ingest.api_checks()
RETURNS TABLE (seq integer, kind text, code text, col text, test text,
               bound double precision, message text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  VALUES
    (1, 'row', 'unparseable', NULL, 'not_object', NULL,
     'the {line} is not a JSON object'),
    (2, 'row', 'missing', 'track_id', 'blank', NULL,
     '{column} is missing'),
    (3, 'row', 'type', 'frame', 'not_number', NULL,
     '{column} is not a number'),
    (4, 'row', 'missing', 'frame', 'absent', NULL,
     '{column} is missing'),
    (5, 'row', 'not_finite', 'frame', 'not_finite', NULL,
     '{column} is {value}; only finite numbers are accepted'),
    (6, 'row', 'type', 't', 'not_number', NULL,
     '{column} is not a number'),
    (7, 'row', 'missing', 't', 'absent', NULL,
     '{column} is missing{no_fps}'),
    (8, 'row', 'not_finite', 't', 'not_finite', NULL,
     '{column} is {value}; only finite numbers are accepted'),
    (9, 'row', 'type', 'x', 'not_number', NULL,
     '{column} is not a number'),
    (10, 'row', 'missing', 'x', 'absent', NULL,
     '{column} is missing'),
    (11, 'row', 'not_finite', 'x', 'not_finite', NULL,
     '{column} is {value}; only finite numbers are accepted'),
    (12, 'row', 'type', 'y', 'not_number', NULL,
     '{column} is not a number'),
    (13, 'row', 'missing', 'y', 'absent', NULL,
     '{column} is missing'),
    (14, 'row', 'not_finite', 'y', 'not_finite', NULL,
     '{column} is {value}; only finite numbers are accepted'),
    (15, 'row', 'type', 'confidence', 'not_number', NULL,
     '{column} is not a number'),
    (16, 'row', 'not_finite', 'confidence', 'not_finite', NULL,
     '{column} is {value}; only finite numbers are accepted'),
    (17, 'row', 'type', 'frame', 'not_integer', NULL,
     'frame {value} is not an integer'),
    (18, 'row', 'negative_frame', 'frame', 'below', 0::float8,
     'frame {value} is negative; frames count from 0'),
    (19, 'row', 'out_of_bounds', 'frame', 'at_least', 9.007199254740992e+15::float8,
     'frame {value} is implausibly large'),
    (20, 'row', 'out_of_bounds', 'x', 'finite_abs_at_least', 1000000::float8,
     '|x| = {abs} is implausible (≥ 1e6)'),
    (21, 'row', 'out_of_bounds', 'y', 'finite_abs_at_least', 1000000::float8,
     '|y| = {abs} is implausible (≥ 1e6)'),
    (22, 'row', 'out_of_bounds', 't', 'abs_at_least', 1000000000::float8,
     't = {value} s is implausible'),
    (23, 'row', 'out_of_range', 'confidence', 'outside_unit', NULL,
     'confidence {value} is outside [0, 1]'),
    (24, 'batch', 'duplicate_key', 'frame', 'duplicate_key', NULL,
     'track {track_id} has frame {frame} twice in this batch'),
    (25, 'batch', 'frame_time_mismatch', 't', 'frame_times', NULL,
     'frame {frame} has t = {t} here but t = {t_ref} elsewhere; one t per frame'),
    (26, 'batch', 'time_not_increasing', 't', 'frame_times', NULL,
     'frame {frame} at t = {t} breaks the order of frames: t must increase with frame'),
    (27, 'batch', 'implausible_speed', 'x', 'speeds', NULL,
     'track {track_id} moves at {speed} {unit} (limit {limit})')
$$;

-- The API's words for the path placeholders of the templates ({line}, {no_fps}), the
-- speed limits (units per second: metric and pixel sources) and the tolerance of one t per
-- frame (seconds).
CREATE OR REPLACE FUNCTION ingest.api_check_words() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT '{
  "line": "item",
  "no_fps": " (or give the source an fps to derive t from frame)",
  "max_speed_m": 100.0,
  "max_speed_px": 20000.0,
  "time_tolerance": 1e-06
}'::jsonb
$$;
