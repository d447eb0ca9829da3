-- Disputes (chargebacks, SPEC §11). A dispute holds part of a payment's captured money: the
-- payment's `amount_disputed` (open and lost disputes; a won dispute gives its amount back) is
-- updated in the same transaction as each dispute, under a CHECK that refunds and disputes
-- together never pass `amount_captured`, so the database refuses an over-dispute or an
-- over-refund whatever the code does, on any number of nodes. Opening books a `dispute`
-- balance transaction (amount −disputed, fee the dispute fee), winning a `dispute_reversal`
-- (+amount); settlements count them in `disputes`.
CREATE TABLE disputes (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    account_id      TEXT NOT NULL,
    mode            TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    payment_id      TEXT NOT NULL REFERENCES payments (id),
    amount          BIGINT NOT NULL CHECK (amount BETWEEN 1 AND 99999999),
    currency        TEXT NOT NULL CHECK (length(currency) = 3),
    reason          TEXT NOT NULL CHECK (reason IN ('fraudulent', 'duplicate',
                        'product_not_received', 'product_unacceptable',
                        'subscription_canceled', 'general')),
    status          TEXT NOT NULL CHECK (status IN ('needs_response', 'under_review', 'won',
                        'lost')),
    evidence        TEXT NOT NULL,
    evidence_due_by BIGINT NOT NULL,
    fee             BIGINT NOT NULL CHECK (fee >= 0),
    metadata        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    closed_at       BIGINT,
    CHECK ((status IN ('won', 'lost')) = (closed_at IS NOT NULL))
);
CREATE INDEX disputes_by_account ON disputes (account_id, mode, seq);
CREATE INDEX disputes_by_payment ON disputes (account_id, mode, payment_id, seq);
CREATE INDEX disputes_by_status ON disputes (account_id, mode, status, seq);
-- The deadline sweeps: on real time, and on one account's test clock.
CREATE INDEX disputes_due ON disputes (evidence_due_by) WHERE status = 'needs_response';
CREATE INDEX disputes_account_due ON disputes (account_id, mode, evidence_due_by)
    WHERE status = 'needs_response';

ALTER TABLE payments ADD COLUMN amount_disputed BIGINT NOT NULL DEFAULT 0
    CONSTRAINT payments_amount_disputed_check
    CHECK (amount_disputed >= 0 AND amount_refunded + amount_disputed <= amount_captured);

ALTER TABLE balance_transactions DROP CONSTRAINT balance_transactions_type_check;
ALTER TABLE balance_transactions ADD CONSTRAINT balance_transactions_type_check
    CHECK (type IN ('payment', 'refund', 'fee', 'payout', 'dispute', 'dispute_reversal'));
ALTER TABLE balance_transactions ADD CONSTRAINT balance_transactions_dispute_check
    CHECK ((type <> 'dispute' OR amount < 0)
       AND (type <> 'dispute_reversal' OR (amount > 0 AND fee = 0)));
-- One opening and at most one reversal per dispute.
CREATE UNIQUE INDEX btx_one_dispute ON balance_transactions (source) WHERE type = 'dispute';
CREATE UNIQUE INDEX btx_one_dispute_reversal ON balance_transactions (source)
    WHERE type = 'dispute_reversal';

-- 0007's `net = gross - refunds - fees` is the table's second unnamed multi-column CHECK,
-- which PostgreSQL named `settlements_check1`.
ALTER TABLE settlements DROP CONSTRAINT IF EXISTS settlements_check1;
ALTER TABLE settlements ADD COLUMN disputes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE settlements ADD CONSTRAINT settlements_net_check
    CHECK (net = gross - refunds - disputes - fees);
