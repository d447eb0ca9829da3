-- Platform keys (`plk_…`, SPEC §10): they manage accounts, not one account's objects. Only
-- the SHA-256 of a key is stored. `source` says where it came from: `cli` (`vinr platform-keys
-- create`, shown once) or `env` (`VINR_PLATFORM_KEY` at start; a start with the same value
-- finds it by its hash and keeps it).
CREATE TABLE platform_keys (
    id         TEXT PRIMARY KEY,
    key_hash   BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    display    TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('cli', 'env')),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
