-- The processor claim's attempt and owner (SPEC §15). `processor_attempt` counts the claims
-- of a payment: the idempotency keys sent to its acquirer carry it, so a retried call of one
-- attempt reuses its key and a later attempt (another card, after a failover or a processor
-- error) gets new ones. `processor_claim_owner` is random per claim (and per takeover by a
-- repair): every write that ends or changes a claim is conditional on it, so a node whose
-- claim ran out can no longer write its answer over the one that took it over.
ALTER TABLE payments ADD COLUMN processor_attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN processor_claim_owner TEXT;
-- Set when the expiry worker ended a payment the acquirer still holds (an authorization or an
-- unfinished 3-D Secure): the acquirer cancel due from then on, leased like a claim (the
-- time the next try may start), cleared once the acquirer cancelled it.
ALTER TABLE payments ADD COLUMN processor_cancel_due BIGINT;
-- Only the payments with a cancel due are in its index (the worker asks for `IS NOT NULL`).
CREATE INDEX payments_processor_cancel_due ON payments (processor_cancel_due)
    WHERE processor_cancel_due IS NOT NULL;
