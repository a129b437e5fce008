-- 0029 · the end of a recording (issue 15, real scenes): ingest.sources.ended_at says that a
-- source's data ended at that time (a recorded file, not a live stream), so an interval
-- still holding at its last frame is an event that lasted to the end, not one that has
-- not ended yet. NULL (the default, and every live camera): nothing is known about the end.
-- Points later than ended_at mean the recording went on: the rules then treat the source
-- as live again (workers/rules/temporal.py, window_cte's data_ends). See docs/pipeline.md
-- ("The end of a recording").
-- depends: 0028_records
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '5min';

ALTER TABLE ingest.sources ADD COLUMN ended_at timestamptz;
COMMENT ON COLUMN ingest.sources.ended_at IS
  'The recording ended at this time (secinf ingest --ended); NULL: live or unknown.';

RESET ROLE;
