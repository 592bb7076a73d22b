-- description: call timing columns on call_log; nullable, no default: a catalog change only
-- adds-column: call_log.started_at timestamp
-- adds-column: call_log.ended_at timestamp
-- adds-column: call_log.duration_sec integer
-- touches: call_log
-- No backfill here: filling these from the legacy fields is a separate, batched job.
ALTER TABLE call_log ADD COLUMN IF NOT EXISTS started_at TIMESTAMP;
ALTER TABLE call_log ADD COLUMN IF NOT EXISTS ended_at TIMESTAMP;
ALTER TABLE call_log ADD COLUMN IF NOT EXISTS duration_sec INTEGER;
