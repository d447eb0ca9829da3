-- VINR schema v1 (SQLite). Money columns are INTEGER minor units; instants are INTEGER Unix
-- milliseconds. Invariants the domain enforces are enforced here a second time, so a bug in
-- one is caught by the other. `seq` gives every table a stable, gap-tolerant list order.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE accounts (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    mode       TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    kind       TEXT NOT NULL CHECK (kind IN ('secret', 'restricted')),
    -- Space-separated scopes of a restricted key; empty for secret keys.
    scopes     TEXT NOT NULL,
    -- SHA-256 of the whole key. The key itself is shown once and never stored.
    key_hash   BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    -- `sk_test_…wxyz`: enough to recognise a key in a list, useless to an attacker.
    display    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE payments (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL,
    mode                TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'requires_authentication',
                            'authorized', 'completed', 'failed', 'cancelled', 'expired')),
    amount              INTEGER NOT NULL CHECK (amount BETWEEN 1 AND 99999999),
    currency            TEXT NOT NULL CHECK (length(currency) = 3),
    description         TEXT,
    return_url          TEXT NOT NULL,
    checkout_token      TEXT NOT NULL UNIQUE,
    metadata            TEXT NOT NULL,
    capture_method      TEXT NOT NULL CHECK (capture_method IN ('automatic', 'manual')),
    amount_capturable   INTEGER NOT NULL CHECK (amount_capturable BETWEEN 0 AND amount),
    amount_captured     INTEGER NOT NULL CHECK (amount_captured BETWEEN 0 AND amount),
    amount_refunded     INTEGER NOT NULL CHECK (amount_refunded BETWEEN 0 AND amount_captured),
    pm_brand            TEXT,
    pm_last4            TEXT CHECK (pm_last4 IS NULL OR length(pm_last4) = 4),
    pm_exp_month        INTEGER,
    pm_exp_year         INTEGER,
    pm_fingerprint      TEXT,
    processor_reference TEXT,
    failure_code        TEXT,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    authorized_at       INTEGER,
    captured_at         INTEGER,
    cancelled_at        INTEGER,
    failed_at           INTEGER,
    expired_at          INTEGER,
    -- Money only moves in a completed payment; nothing is capturable outside `authorized`.
    CHECK (amount_captured = 0 OR status = 'completed'),
    CHECK (amount_capturable = 0 OR status = 'authorized'),
    CHECK (status <> 'failed' OR failure_code IS NOT NULL)
);
CREATE INDEX payments_by_account ON payments (account_id, mode, seq);
CREATE INDEX payments_by_status ON payments (account_id, mode, status, seq);

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    type       TEXT NOT NULL,
    object_id  TEXT NOT NULL,
    -- The JSON snapshot of the object after the change.
    data       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX events_by_account ON events (account_id, mode, seq);
CREATE INDEX events_by_type ON events (account_id, mode, type, seq);
CREATE INDEX events_by_created ON events (created_at);

-- The first completed answer to a request with an Idempotency-Key, committed in the same
-- transaction as the request's effects.
CREATE TABLE idempotency_keys (
    account_id    TEXT NOT NULL,
    mode          TEXT NOT NULL,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    key           TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  BLOB NOT NULL,
    status_code   INTEGER NOT NULL,
    response_body BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (account_id, mode, method, path, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_created ON idempotency_keys (created_at);
