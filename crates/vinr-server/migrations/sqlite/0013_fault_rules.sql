-- Fault rules (SPEC §12): the next `remaining` test-mode requests of an account with this
-- method and path (exact, or a prefix ending in `*`) suffer `fault`; the oldest rule (`seq`)
-- that matches hits first. A rule counted down to nothing is deleted, so that the key lookup
-- can tell in one probe whether an account has any.
CREATE TABLE fault_rules (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode = 'test'),
    method      TEXT NOT NULL CHECK (method IN ('GET', 'POST', 'DELETE')),
    path        TEXT NOT NULL CHECK (length(path) BETWEEN 1 AND 256),
    fault       TEXT NOT NULL,
    remaining   BIGINT NOT NULL CHECK (remaining >= 1),
    created_at  BIGINT NOT NULL
);
CREATE INDEX fault_rules_by_account ON fault_rules (account_id, seq);
