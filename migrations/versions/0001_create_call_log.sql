-- description: call_log as production had it before 109 (legacy duration, no timing columns)
-- adds-column: call_log.id bigint
-- adds-column: call_log.call_sid text
-- adds-column: call_log.status text
-- adds-column: call_log.created_at timestamp with time zone
-- adds-column: call_log.duration integer
-- touches: call_log
CREATE TABLE IF NOT EXISTS call_log (
    id BIGSERIAL PRIMARY KEY,
    call_sid TEXT NOT NULL UNIQUE,
    direction TEXT NOT NULL DEFAULT 'inbound',
    from_number TEXT,
    to_number TEXT,
    status TEXT NOT NULL DEFAULT 'ringing',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    answered_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- legacy: whole seconds, set when the call ends; 109's duration_sec replaces it
    duration INTEGER
);
