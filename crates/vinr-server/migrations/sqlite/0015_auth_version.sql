-- What a key lookup answers (the key, its account's test clock, whether the account has fault
-- rules) is cached by each server process (issue 16). `auth_version` changes with every write
-- that could change such an answer, whichever process makes it (a `vinr keys revoke` beside
-- the server, an older binary): the triggers below are the one place that knows which writes
-- those are. A server reads the version before it trusts its cache. Creating a key changes
-- nothing cached (only keys that were found are cached).
CREATE TABLE auth_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO auth_version (id, version) VALUES (1, 0);
CREATE TRIGGER api_keys_update_auth AFTER UPDATE ON api_keys
BEGIN UPDATE auth_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER api_keys_delete_auth AFTER DELETE ON api_keys
BEGIN UPDATE auth_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_clock_auth AFTER UPDATE OF test_clock_ms ON accounts
BEGIN UPDATE auth_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_delete_auth AFTER DELETE ON accounts
BEGIN UPDATE auth_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER fault_rules_insert_auth AFTER INSERT ON fault_rules
BEGIN UPDATE auth_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER fault_rules_delete_auth AFTER DELETE ON fault_rules
BEGIN UPDATE auth_version SET version = version + 1 WHERE id = 1; END;
