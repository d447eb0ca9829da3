-- Most stored answers are the JSON of the object after the change, which the request's event
-- already holds. Such answers now point at that event instead of repeating the JSON (one copy
-- of ~1 KB fewer per write); `response_body` is then empty. Events outlive idempotency keys
-- (30 days against at most 30 days, enforced by the configuration).
ALTER TABLE idempotency_keys ADD COLUMN response_event_id TEXT;
