-- The expiry worker finds unfinished checkouts past `expires_at` and authorizations past their
-- capture window without scanning every payment.
CREATE INDEX payments_due_expiry ON payments (status, expires_at)
    WHERE status IN ('pending', 'requires_authentication');
CREATE INDEX payments_due_auto_cancel ON payments (status, authorized_at)
    WHERE status = 'authorized';
