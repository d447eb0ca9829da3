-- Webhook faults on purpose (SPEC §12), test mode only.
--
-- `faults` is the endpoint's faults as JSON ({"duplicate": p, "badSignature": p, "delayMs": n,
-- "outOfOrder": b}), NULL for none. `fault` names the fault an attempt carried. `held_at`
-- marks a delivery of an `outOfOrder` endpoint held back for a later one: it stays set (its
-- attempts record `outOfOrder`); the hold ends when `next_attempt_at` comes, set to at most
-- 5 s after `held_at`, or brought forward when the later delivery's attempt is recorded.
-- `released_by` is that later delivery, set when it is leased: one held delivery is released
-- by one later delivery only.
ALTER TABLE webhook_endpoints ADD COLUMN faults TEXT;
ALTER TABLE webhook_attempts ADD COLUMN fault TEXT
    CHECK (fault IN ('duplicate', 'badSignature', 'delay', 'outOfOrder'));
ALTER TABLE webhook_deliveries ADD COLUMN held_at BIGINT;
ALTER TABLE webhook_deliveries ADD COLUMN released_by BIGINT;
-- The held deliveries of one endpoint, found at each of its first attempts.
CREATE INDEX webhook_deliveries_held ON webhook_deliveries (endpoint_id, next_attempt_at)
    WHERE held_at IS NOT NULL AND status = 'pending';
