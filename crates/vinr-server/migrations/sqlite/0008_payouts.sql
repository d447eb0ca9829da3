-- Payouts are balance transactions (SPEC §7): a settlement's payout is booked as a `payout`
-- balance transaction (source the `setl_` id, amount −net, fee 0) whose ledger entries are the
-- payout's, so the sum of an account's balance transactions' `net` always equals its balance.
-- A payout is never gathered into a settlement (`settlement_id` stays NULL, and the index
-- settlement runs use leaves payouts out); one per settlement. Its id is the settlement's id
-- under the `btx_` prefix (`Settlement::payout_transaction_id`), which this migration also uses
-- to book the payouts made before it. SQLite cannot change a CHECK in place: the table is
-- rebuilt with the same rows, seq and indexes.
CREATE TABLE balance_transactions_0008 (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL,
    mode          TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    type          TEXT NOT NULL CHECK (type IN ('payment', 'refund', 'fee', 'payout')),
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
    CHECK (type <> 'payout' OR (fee = 0 AND amount <> 0 AND settlement_id IS NULL))
);
INSERT INTO balance_transactions_0008 (seq, id, account_id, mode, type, source, amount, fee,
    net, currency, created_at, available_on, settlement_id)
SELECT seq, id, account_id, mode, type, source, amount, fee, net, currency, created_at,
    available_on, settlement_id
FROM balance_transactions;
DROP TABLE balance_transactions;
ALTER TABLE balance_transactions_0008 RENAME TO balance_transactions;
CREATE INDEX btx_by_account ON balance_transactions (account_id, mode, seq);
CREATE INDEX btx_by_source ON balance_transactions (account_id, mode, source, seq);
CREATE INDEX btx_by_settlement ON balance_transactions (account_id, mode, settlement_id, seq);
-- What settlement runs look for: per account, mode and currency, unsettled and due; payouts are
-- never settled, so they do not pile up here.
CREATE INDEX btx_unsettled ON balance_transactions (account_id, mode, currency, available_on)
    WHERE settlement_id IS NULL AND type <> 'payout';
CREATE UNIQUE INDEX btx_one_capture ON balance_transactions (source) WHERE type = 'payment';
-- One payout per settlement.
CREATE UNIQUE INDEX btx_one_payout ON balance_transactions (source) WHERE type = 'payout';

-- The payouts already made (their ledger entries were written under the settlement's id).
INSERT INTO balance_transactions (id, account_id, mode, type, source, amount, fee, net,
    currency, created_at, available_on, settlement_id)
SELECT 'btx_' || substr(id, 6), account_id, mode, 'payout', id, -net, 0, -net, currency,
    paid_at, paid_at, NULL
FROM settlements WHERE status = 'paid' AND net <> 0
ORDER BY paid_at, seq;
UPDATE ledger_entries SET movement_id = 'btx_' || substr(movement_id, 6)
WHERE movement_id LIKE 'setl\_%' ESCAPE '\';
