-- What a key lookup answers (the key, its account's test clock, whether the account has fault
-- rules) is cached by each server node (issue 16). Every write that could change such an
-- answer, whichever node or process makes it (a `vinr keys revoke`, an older binary),
-- notifies channel `vinr_auth` when it commits; every node listens and drops its cache. The
-- triggers below are the one place that knows which writes those are. Statement triggers: a
-- notification per statement at most, and PostgreSQL folds the same notification sent twice
-- in one transaction into one. No shared row is written, so these writes never wait for each
-- other. Creating a key changes nothing cached (only keys that were found are cached).
CREATE FUNCTION vinr_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vinr_auth', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER api_keys_auth AFTER UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION vinr_auth_changed();
CREATE TRIGGER accounts_auth AFTER UPDATE OF test_clock_ms OR DELETE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION vinr_auth_changed();
CREATE TRIGGER fault_rules_auth AFTER INSERT OR DELETE ON fault_rules
    FOR EACH STATEMENT EXECUTE FUNCTION vinr_auth_changed();
