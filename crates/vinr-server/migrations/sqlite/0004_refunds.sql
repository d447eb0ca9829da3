-- Refunds (SPEC §5). The payment's `amount_refunded` (CHECK: at most `amount_captured`) is
-- updated in the same transaction as each refund, so the database refuses a refund sum past
-- the captured amount whatever the code does. `lease_until` lets one worker at a time ask the
-- processor about a pending refund.
CREATE TABLE refunds (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL,
    mode           TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    payment_id     TEXT NOT NULL REFERENCES payments (id),
    amount         INTEGER NOT NULL CHECK (amount BETWEEN 1 AND 99999999),
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    status         TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason         TEXT CHECK (reason IS NULL OR reason IN ('duplicate', 'fraudulent',
                       'requested_by_customer')),
    metadata       TEXT NOT NULL,
    failure_reason TEXT,
    created_at     INTEGER NOT NULL,
    lease_until    INTEGER,
    CHECK (status <> 'failed' OR failure_reason IS NOT NULL)
);
CREATE INDEX refunds_by_account ON refunds (account_id, mode, seq);
CREATE INDEX refunds_by_payment ON refunds (account_id, mode, payment_id, seq);
CREATE INDEX refunds_pending ON refunds (seq) WHERE status = 'pending';
