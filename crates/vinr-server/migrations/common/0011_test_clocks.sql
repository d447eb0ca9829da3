-- Each account's test-mode clock (SPEC §10): real time plus this offset, which only grows
-- (`POST /v1/test_helpers/clock/advance`) until a reset sets it back to 0. Live mode is always
-- on real time.
ALTER TABLE accounts ADD COLUMN test_clock_ms BIGINT NOT NULL DEFAULT 0
    CHECK (test_clock_ms >= 0);
-- The clock worker visits the accounts whose clock runs ahead.
CREATE INDEX accounts_clocked ON accounts (id) WHERE test_clock_ms > 0;
-- The next thing due on one account's clock, found without scanning its payments.
CREATE INDEX payments_account_due_expiry ON payments (account_id, mode, expires_at)
    WHERE status IN ('pending', 'requires_authentication');
CREATE INDEX payments_account_due_auto_cancel ON payments (account_id, mode, authorized_at)
    WHERE status = 'authorized';
