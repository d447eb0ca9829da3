-- Disputes (chargebacks, SPEC §11). A dispute holds part of a payment's captured money: the
-- payment's `amount_disputed` (open and lost disputes; a won dispute gives its amount back) is
-- updated in the same transaction as each dispute, under a CHECK that refunds and disputes
-- together never pass `amount_captured`, so the database refuses an over-dispute or an
-- over-refund whatever the code does. Opening books a `dispute` balance transaction (amount
-- −disputed, fee the dispute fee), winning a `dispute_reversal` (+amount); settlements count
-- them in `disputes`. SQLite cannot change a CHECK in place: `balance_transactions` and
-- `settlements` are rebuilt with the same rows, seq and indexes.
CREATE TABLE disputes (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    account_id      TEXT NOT NULL,
    mode            TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    payment_id      TEXT NOT NULL REFERENCES payments (id),
    amount          INTEGER NOT NULL CHECK (amount BETWEEN 1 AND 99999999),
    currency        TEXT NOT NULL CHECK (length(currency) = 3),
    reason          TEXT NOT NULL CHECK (reason IN ('fraudulent', 'duplicate',
                        'product_not_received', 'product_unacceptable',
                        'subscription_canceled', 'general')),
    status          TEXT NOT NULL CHECK (status IN ('needs_response', 'under_review', 'won',
                        'lost')),
    evidence        TEXT NOT NULL,
    evidence_due_by INTEGER NOT NULL,
    fee             INTEGER NOT NULL CHECK (fee >= 0),
    metadata        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    closed_at       INTEGER,
    CHECK ((status IN ('won', 'lost')) = (closed_at IS NOT NULL))
);
CREATE INDEX disputes_by_account ON disputes (account_id, mode, seq);
CREATE INDEX disputes_by_payment ON disputes (account_id, mode, payment_id, seq);
CREATE INDEX disputes_by_status ON disputes (account_id, mode, status, seq);
-- The deadline sweeps: on real time, and on one account's test clock.
CREATE INDEX disputes_due ON disputes (evidence_due_by) WHERE status = 'needs_response';
CREATE INDEX disputes_account_due ON disputes (account_id, mode, evidence_due_by)
    WHERE status = 'needs_response';

-- A column CHECK may name the row's other columns; dropping the column drops it too.
ALTER TABLE payments ADD COLUMN amount_disputed INTEGER NOT NULL DEFAULT 0
    CHECK (amount_disputed >= 0 AND amount_refunded + amount_disputed <= amount_captured);

CREATE TABLE balance_transactions_0012 (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL,
    mode          TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    type          TEXT NOT NULL CHECK (type IN ('payment', 'refund', 'fee', 'payout', 'dispute',
                      'dispute_reversal')),
    source        TEXT NOT NULL,
    amount        INTEGER NOT NULL,
    fee           INTEGER NOT NULL CHECK (fee >= 0),
    net           INTEGER NOT NULL,
    currency      TEXT NOT NULL CHECK (length(currency) = 3),
    created_at    INTEGER NOT NULL,
    available_on  INTEGER NOT NULL CHECK (available_on >= created_at),
    settlement_id TEXT,
    CHECK (net = amount - fee),
    CHECK (type <> 'payment' OR amount > 0),
    CHECK (type <> 'fee' OR (amount = 0 AND fee > 0)),
    CHECK (type <> 'payout' OR (fee = 0 AND amount <> 0 AND settlement_id IS NULL)),
    CHECK (type <> 'dispute' OR amount < 0),
    CHECK (type <> 'dispute_reversal' OR (amount > 0 AND fee = 0))
);
INSERT INTO balance_transactions_0012 (seq, id, account_id, mode, type, source, amount, fee,
    net, currency, created_at, available_on, settlement_id)
SELECT seq, id, account_id, mode, type, source, amount, fee, net, currency, created_at,
    available_on, settlement_id
FROM balance_transactions;
DROP TABLE balance_transactions;
ALTER TABLE balance_transactions_0012 RENAME TO balance_transactions;
CREATE INDEX btx_by_account ON balance_transactions (account_id, mode, seq);
CREATE INDEX btx_by_source ON balance_transactions (account_id, mode, source, seq);
CREATE INDEX btx_by_settlement ON balance_transactions (account_id, mode, settlement_id, seq);
CREATE INDEX btx_unsettled ON balance_transactions (account_id, mode, currency, available_on)
    WHERE settlement_id IS NULL AND type <> 'payout';
CREATE UNIQUE INDEX btx_one_capture ON balance_transactions (source) WHERE type = 'payment';
CREATE UNIQUE INDEX btx_one_payout ON balance_transactions (source) WHERE type = 'payout';
CREATE INDEX btx_by_available_on ON balance_transactions (account_id, mode, available_on);
-- One opening and at most one reversal per dispute.
CREATE UNIQUE INDEX btx_one_dispute ON balance_transactions (source) WHERE type = 'dispute';
CREATE UNIQUE INDEX btx_one_dispute_reversal ON balance_transactions (source)
    WHERE type = 'dispute_reversal';

CREATE TABLE settlements_0012 (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    account_id        TEXT NOT NULL,
    mode              TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    currency          TEXT NOT NULL CHECK (length(currency) = 3),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'paid')),
    gross             INTEGER NOT NULL,
    refunds           INTEGER NOT NULL,
    disputes          INTEGER NOT NULL DEFAULT 0,
    fees              INTEGER NOT NULL CHECK (fees >= 0),
    net               INTEGER NOT NULL,
    transaction_count INTEGER NOT NULL CHECK (transaction_count > 0),
    period_start      INTEGER NOT NULL,
    period_end        INTEGER NOT NULL CHECK (period_end >= period_start),
    created_at        INTEGER NOT NULL,
    paid_at           INTEGER,
    CHECK (net = gross - refunds - disputes - fees),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);
INSERT INTO settlements_0012 (seq, id, account_id, mode, currency, status, gross, refunds, fees,
    net, transaction_count, period_start, period_end, created_at, paid_at)
SELECT seq, id, account_id, mode, currency, status, gross, refunds, fees, net,
    transaction_count, period_start, period_end, created_at, paid_at
FROM settlements;
DROP TABLE settlements;
ALTER TABLE settlements_0012 RENAME TO settlements;
CREATE INDEX settlements_by_account ON settlements (account_id, mode, seq);
CREATE INDEX settlements_by_group ON settlements (account_id, mode, currency, created_at);
CREATE INDEX settlements_pending ON settlements (created_at) WHERE status = 'pending';
