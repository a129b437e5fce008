-- 0012 rollback: back to the frame-count smoothing default.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DELETE FROM pipeline.settings WHERE project_id IS NULL AND key = 'smoothing_s';
INSERT INTO pipeline.settings (project_id, key, value) VALUES (NULL, 'smoothing_window', '3')
ON CONFLICT DO NOTHING;
