-- Only claimed payments are in the stale-claim index (the repair worker asks for
-- `processor_claimed_until IS NOT NULL AND processor_claimed_until < $1`): the unclaimed ones,
-- nearly all of them, cost a create nothing there (issue 16: every secondary index a create
-- writes is paid on the single SQLite writer).
DROP INDEX payments_processor_claimed;
CREATE INDEX payments_processor_claimed ON payments (processor_claimed_until)
    WHERE processor_claimed_until IS NOT NULL;
