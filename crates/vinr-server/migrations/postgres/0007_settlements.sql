-- Settlements (SPEC §7). A run gathers an account's due, unsettled balance transactions of one
-- mode and currency by setting their `settlement_id` (a column holds one value, so no
-- transaction is ever in two settlements) and inserts the settlement with the totals of exactly
-- the rows it gathered, in one transaction. The payout later moves `net` out of the merchant's
-- balance in the ledger (movement id = the settlement's id).
CREATE TABLE settlements (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    account_id        TEXT NOT NULL,
    mode              TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    currency          TEXT NOT NULL CHECK (length(currency) = 3),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'paid')),
    gross             BIGINT NOT NULL,
    refunds           BIGINT NOT NULL,
    fees              BIGINT NOT NULL CHECK (fees >= 0),
    net               BIGINT NOT NULL,
    transaction_count BIGINT NOT NULL CHECK (transaction_count > 0),
    period_start      BIGINT NOT NULL,
    period_end        BIGINT NOT NULL CHECK (period_end >= period_start),
    created_at        BIGINT NOT NULL,
    paid_at           BIGINT,
    CHECK (net = gross - refunds - fees),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);
CREATE INDEX settlements_by_account ON settlements (account_id, mode, seq);
CREATE INDEX settlements_by_group ON settlements (account_id, mode, currency, created_at);
CREATE INDEX settlements_pending ON settlements (created_at) WHERE status = 'pending';
