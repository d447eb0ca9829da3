-- VINR schema v1 (PostgreSQL). The same tables and invariants as the SQLite schema: money
-- columns are BIGINT minor units, instants BIGINT Unix milliseconds, `seq` a stable list
-- order. Money invariants are CHECK constraints, so they hold across every node.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    mode       TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    kind       TEXT NOT NULL CHECK (kind IN ('secret', 'restricted')),
    scopes     TEXT NOT NULL,
    key_hash   BYTEA NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    display    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE payments (
    seq                 BIGSERIAL PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL,
    mode                TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'requires_authentication',
                            'authorized', 'completed', 'failed', 'cancelled', 'expired')),
    amount              BIGINT NOT NULL CHECK (amount BETWEEN 1 AND 99999999),
    currency            TEXT NOT NULL CHECK (length(currency) = 3),
    description         TEXT,
    return_url          TEXT NOT NULL,
    checkout_token      TEXT NOT NULL UNIQUE,
    metadata            TEXT NOT NULL,
    capture_method      TEXT NOT NULL CHECK (capture_method IN ('automatic', 'manual')),
    amount_capturable   BIGINT NOT NULL CHECK (amount_capturable BETWEEN 0 AND amount),
    amount_captured     BIGINT NOT NULL CHECK (amount_captured BETWEEN 0 AND amount),
    amount_refunded     BIGINT NOT NULL CHECK (amount_refunded BETWEEN 0 AND amount_captured),
    pm_brand            TEXT,
    pm_last4            TEXT CHECK (pm_last4 IS NULL OR length(pm_last4) = 4),
    pm_exp_month        INTEGER,
    pm_exp_year         INTEGER,
    pm_fingerprint      TEXT,
    processor_reference TEXT,
    failure_code        TEXT,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    authorized_at       BIGINT,
    captured_at         BIGINT,
    cancelled_at        BIGINT,
    failed_at           BIGINT,
    expired_at          BIGINT,
    CHECK (amount_captured = 0 OR status = 'completed'),
    CHECK (amount_capturable = 0 OR status = 'authorized'),
    CHECK (status <> 'failed' OR failure_code IS NOT NULL)
);
CREATE INDEX payments_by_account ON payments (account_id, mode, seq);
CREATE INDEX payments_by_status ON payments (account_id, mode, status, seq);

CREATE TABLE events (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    type       TEXT NOT NULL,
    object_id  TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_by_account ON events (account_id, mode, seq);
CREATE INDEX events_by_type ON events (account_id, mode, type, seq);
CREATE INDEX events_by_created ON events (created_at);

CREATE TABLE idempotency_keys (
    account_id    TEXT NOT NULL,
    mode          TEXT NOT NULL,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    key           TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  BYTEA NOT NULL,
    status_code   INTEGER NOT NULL,
    response_body BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, mode, method, path, key)
);
CREATE INDEX idempotency_keys_by_created ON idempotency_keys (created_at);
