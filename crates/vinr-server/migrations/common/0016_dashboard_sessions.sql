-- Dashboard sessions (SPEC §13): a browser signed in with an API key holds a random session
-- id in an HttpOnly cookie; only the id's SHA-256 is stored (hex), with the SHA-256 of the key
-- it was opened with (the `api_keys.key_hash` of that key, hex), so a revoked key ends its
-- sessions at the next request. A session is never extended past `expires_at`.
CREATE TABLE dashboard_sessions (
    id_hash    TEXT PRIMARY KEY CHECK (length(id_hash) = 64),
    key_hash   TEXT NOT NULL CHECK (length(key_hash) = 64),
    account_id TEXT NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL CHECK (expires_at > created_at)
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
-- A payment's timeline: its events and those of its refunds and disputes, by object.
CREATE INDEX events_object ON events (account_id, mode, object_id);
