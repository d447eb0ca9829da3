-- A balance is read without summing its history. The merchant-balance total per account, mode
-- and currency is kept in step with the ledger by the transaction that books each movement,
-- spread over a few slots so that concurrent bookings on PostgreSQL rarely wait for the same
-- row (a balance adds up its slots). The part not yet available is summed over the balance
-- transactions whose `available_on` is still ahead (a bounded, recent range of
-- `btx_by_available_on`).
CREATE TABLE balance_totals (
    account_id TEXT NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    currency   TEXT NOT NULL CHECK (length(currency) = 3),
    slot       BIGINT NOT NULL CHECK (slot >= 0),
    amount     BIGINT NOT NULL,
    PRIMARY KEY (account_id, mode, currency, slot)
);
INSERT INTO balance_totals (account_id, mode, currency, slot, amount)
SELECT account_id, mode, currency, 0, -SUM(amount) FROM ledger_entries
WHERE ledger_account = 'merchant_balance'
GROUP BY account_id, mode, currency;
CREATE INDEX btx_by_available_on ON balance_transactions (account_id, mode, available_on);
