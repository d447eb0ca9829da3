-- The processor claim's attempt and owner (SPEC §15). `processor_attempt` counts the claims
-- of a payment: the idempotency keys sent to its acquirer carry it, so a retried call of one
-- attempt reuses its key and a later attempt (another card, after a failover or a processor
-- error) gets new ones. `processor_claim_owner` is random per claim (and per takeover by a
-- repair): every write that ends or changes a claim is conditional on it, so a node whose
-- claim ran out can no longer write its answer over the one that took it over.
ALTER TABLE payments ADD COLUMN processor_attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN processor_claim_owner TEXT;
