-- 0012 · features in seconds: the smoothing window is `smoothing_s` seconds (a centred time
-- window, the same span at 2.5 Hz and at 30 fps) instead of `smoothing_window` frames
-- (3 frames were 0.1 s at 30 fps and 1.2 s at 2.5 Hz). See docs/pipeline.md ("Definitions").
-- Projects whose ontology set smoothing_window keep that row (unread); they use the default
-- smoothing_s until their ontology is loaded again.
-- depends: 0011_candidate_tier
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

INSERT INTO pipeline.settings (project_id, key, value) VALUES
  (NULL, 'smoothing_s', '1.0')     -- seconds of the centred line fit; 0 = off
ON CONFLICT DO NOTHING;
DELETE FROM pipeline.settings WHERE project_id IS NULL AND key = 'smoothing_window';

RESET ROLE;
