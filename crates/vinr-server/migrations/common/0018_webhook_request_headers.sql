-- The request headers an attempt sent (SPEC §13: the dashboard shows "request headers and
-- body"): a JSON object of header name to value, as put on the wire (`webhook-id`,
-- `webhook-timestamp`, `webhook-signature`, `content-type`, `user-agent`, …). The endpoint's
-- secret is never among them (the signature made with it is). NULL when nothing was sent (the
-- address was refused before connecting) and for attempts recorded before this version.
ALTER TABLE webhook_attempts ADD COLUMN request_headers TEXT;
