-- Cases, their timeline, command idempotency and the event outbox.
-- Portable SQL: this one file runs on SQLite and PostgreSQL. Timestamps are BIGINT microseconds
-- since the Unix epoch (UTC); Discord snowflakes are decimal TEXT.

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('case_number', 0);
INSERT INTO counters (name, value) VALUES ('outbox', 0);

CREATE TABLE cases (
    number BIGINT PRIMARY KEY,
    open_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    subject TEXT NOT NULL,
    description TEXT NOT NULL,
    severity TEXT NOT NULL,
    priority TEXT NOT NULL,
    assignee TEXT,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    user_display_name TEXT NOT NULL,
    user_locale TEXT NOT NULL,
    origin_channel_id TEXT NOT NULL,
    origin_interaction_id TEXT NOT NULL,
    origin_conversation_id TEXT NOT NULL,
    origin_interaction_token TEXT NOT NULL,
    origin_application_id TEXT NOT NULL,
    conversation_sid TEXT NOT NULL,
    interaction_sid TEXT NOT NULL,
    agent_identity TEXT,
    agent_name TEXT,
    csat_rating BIGINT,
    csat_comment TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX cases_status_number ON cases (status, number);
CREATE INDEX cases_kind_number ON cases (kind, number);
CREATE INDEX cases_user_number ON cases (user_id, number);

CREATE TABLE case_timeline (
    case_number BIGINT NOT NULL REFERENCES cases (number),
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    event_type TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (case_number, seq)
);

-- One row per bus command ever applied (or rejected): a redelivered command returns this result.
CREATE TABLE applied_commands (
    command_id TEXT PRIMARY KEY,
    case_number BIGINT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    applied_at BIGINT NOT NULL
);

-- Events written in the same transaction as the change; the relay publishes and deletes them.
-- Ids come from counters('outbox') inside the transaction, so id order is commit order.
CREATE TABLE outbox (
    id BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    subject_suffix TEXT NOT NULL,
    case_number BIGINT NOT NULL,
    payload BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
