-- Card processing through connectors (SPEC §15). A payment names the configured processor
-- that has (or last tried) its card; `processor_claimed_until` is set while one submission
-- holds the payment for a call to its acquirer (claimed before the call, so double submits
-- and several nodes never send one payment twice), and a claim past its time is repaired by
-- asking the acquirer. Every call to a processor for a payment is an attempt.
ALTER TABLE payments ADD COLUMN processor TEXT;
ALTER TABLE payments ADD COLUMN processor_claimed_until BIGINT;
CREATE INDEX payments_processor_claimed ON payments (processor_claimed_until);
CREATE TABLE payment_attempts (
    id            TEXT PRIMARY KEY,
    payment_id    TEXT NOT NULL,
    processor     TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    failure_code  TEXT,
    detail        TEXT,
    latency_ms    BIGINT NOT NULL,
    position      BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX payment_attempts_by_payment ON payment_attempts (payment_id, position);
