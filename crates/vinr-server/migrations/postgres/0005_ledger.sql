-- The double-entry ledger (SPEC §7). Each balance transaction (btx_) is what a merchant sees
-- of one movement of money (a capture with its fee, a refund, its reversal, a fee); its
-- ledger entries, written in the same transaction, move the amounts between ledger accounts
-- and sum to zero per movement. A movement is a balance transaction or a settlement's payout
-- (`movement_id` is a btx_ or setl_ id). Balances are sums of entries; `settlement_id` is set
-- once a settlement has gathered the transaction.
CREATE TABLE balance_transactions (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL,
    mode          TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    type          TEXT NOT NULL CHECK (type IN ('payment', 'refund', 'fee')),
    source        TEXT NOT NULL,
    amount        BIGINT NOT NULL,
    fee           BIGINT NOT NULL CHECK (fee >= 0),
    net           BIGINT NOT NULL,
    currency      TEXT NOT NULL CHECK (length(currency) = 3),
    created_at    BIGINT NOT NULL,
    available_on  BIGINT NOT NULL CHECK (available_on >= created_at),
    settlement_id TEXT,
    CHECK (net = amount - fee),
    CHECK (type <> 'payment' OR amount > 0),
    CHECK (type <> 'fee' OR (amount = 0 AND fee > 0))
);
CREATE INDEX btx_by_account ON balance_transactions (account_id, mode, seq);
CREATE INDEX btx_by_source ON balance_transactions (account_id, mode, source, seq);
CREATE INDEX btx_by_settlement ON balance_transactions (account_id, mode, settlement_id, seq);
-- What settlement runs look for: per account, mode and currency, unsettled and due.
CREATE INDEX btx_unsettled ON balance_transactions (account_id, mode, currency, available_on)
    WHERE settlement_id IS NULL;
-- One capture per payment: a second capture movement for the same payment is refused.
CREATE UNIQUE INDEX btx_one_capture ON balance_transactions (source) WHERE type = 'payment';

CREATE TABLE ledger_entries (
    seq            BIGSERIAL PRIMARY KEY,
    movement_id    TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    mode           TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    ledger_account TEXT NOT NULL CHECK (ledger_account IN
                       ('processor_clearing', 'merchant_balance', 'fee_revenue', 'payouts')),
    amount         BIGINT NOT NULL CHECK (amount <> 0)
);
CREATE INDEX ledger_by_movement ON ledger_entries (movement_id);
CREATE INDEX ledger_by_account ON ledger_entries (account_id, mode, ledger_account, currency);
