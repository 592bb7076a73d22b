-- description: index call_log by creation time, built without blocking writes
-- touches: call_log
-- transaction: false
CREATE INDEX CONCURRENTLY IF NOT EXISTS call_log_created_at_idx ON call_log (created_at);
