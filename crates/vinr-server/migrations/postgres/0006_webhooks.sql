-- Webhooks (SPEC §6): endpoints, the delivery outbox and every attempt.
--
-- `events` is '*' or the subscribed types between commas (',payment.completed,refund.created,'),
-- so the outbox can match an event to its endpoints inside one INSERT … SELECT. The secret is
-- kept (not hashed): the server must recompute signatures with it.
CREATE TABLE webhook_endpoints (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    url         TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description TEXT,
    events      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    created_at  BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_account ON webhook_endpoints (account_id, mode, seq);

-- One row per (event, endpoint) to deliver, written in the event's transaction. A worker
-- leases due rows (`lease_until`) so that one attempt at a time is made for each; deleting the
-- endpoint deletes its deliveries, so nothing more is sent.
CREATE TABLE webhook_deliveries (
    seq             BIGSERIAL PRIMARY KEY,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id);

-- Every attempt, for `GET /v1/webhooks/:id/deliveries`; `delivery_seq` is NULL for the
-- `webhook.test` events of `POST /v1/webhooks/:id/test`.
CREATE TABLE webhook_attempts (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    account_id       TEXT NOT NULL,
    mode             TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    endpoint_id      TEXT NOT NULL,
    delivery_seq     BIGINT,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    attempt          BIGINT NOT NULL CHECK (attempt >= 1),
    succeeded        BOOLEAN NOT NULL,
    status_code      BIGINT,
    latency_ms       BIGINT NOT NULL CHECK (latency_ms >= 0),
    response_excerpt TEXT,
    error            TEXT,
    next_attempt_at  BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (account_id, mode, endpoint_id, seq);
