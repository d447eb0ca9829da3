//! Checks of the ledger that the API cannot show, read from the database itself.

use super::database::query_integers;

/// Checks the ledger in the database: every movement sums to zero, every balance transaction
/// has entries whose merchant side equals its `net`, nothing else is in the ledger, and so each
/// balance is the sum of its balance transactions' `net`.
pub async fn assert_ledger_consistent(url: &str) {
    let unbalanced = query_integers(
        url,
        "SELECT count(*) FROM (SELECT movement_id FROM ledger_entries
             GROUP BY movement_id HAVING SUM(amount) <> 0) AS m",
    )
    .await;
    assert_eq!(
        unbalanced,
        vec![0],
        "movements whose entries do not sum to zero"
    );
    let disagreeing = query_integers(
        url,
        "SELECT count(*) FROM balance_transactions b WHERE b.net <> -(
             SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM ledger_entries e
             WHERE e.movement_id = b.id AND e.ledger_account = 'merchant_balance')",
    )
    .await;
    assert_eq!(
        disagreeing,
        vec![0],
        "balance transactions whose net is not what their entries move"
    );
    let orphans = query_integers(
        url,
        "SELECT count(*) FROM ledger_entries e
         WHERE NOT EXISTS (SELECT 1 FROM balance_transactions b WHERE b.id = e.movement_id)",
    )
    .await;
    assert_eq!(
        orphans,
        vec![0],
        "entries of no balance transaction (a payout is one too)"
    );
    // SPEC §7: per account, mode and currency, the balance transactions' `net` sums to the
    // balance (what the merchant-balance entries hold).
    let off_balance = query_integers(
        url,
        "SELECT count(*) FROM (
             SELECT account_id, mode, currency, SUM(net) AS net FROM balance_transactions
             GROUP BY account_id, mode, currency) AS b
         FULL OUTER JOIN (
             SELECT account_id, mode, currency, -SUM(amount) AS balance FROM ledger_entries
             WHERE ledger_account = 'merchant_balance'
             GROUP BY account_id, mode, currency) AS l
         ON l.account_id = b.account_id AND l.mode = b.mode AND l.currency = b.currency
         WHERE COALESCE(b.net, 0) <> COALESCE(l.balance, 0)",
    )
    .await;
    assert_eq!(
        off_balance,
        vec![0],
        "balances that are not the sum of their balance transactions' net"
    );
    // The running totals a balance is read from hold what the ledger holds.
    let off_totals = query_integers(
        url,
        "SELECT count(*) FROM (
             SELECT account_id, mode, currency, SUM(amount) AS total FROM balance_totals
             GROUP BY account_id, mode, currency) AS t
         FULL OUTER JOIN (
             SELECT account_id, mode, currency, -SUM(amount) AS balance FROM ledger_entries
             WHERE ledger_account = 'merchant_balance'
             GROUP BY account_id, mode, currency) AS l
         ON l.account_id = t.account_id AND l.mode = t.mode AND l.currency = t.currency
         WHERE COALESCE(t.total, 0) <> COALESCE(l.balance, 0)",
    )
    .await;
    assert_eq!(
        off_totals,
        vec![0],
        "running balance totals that are not what the ledger's entries hold"
    );
    assert_disputes_consistent(url).await;
}

/// SPEC §11: a payment's `amountDisputed` is what its open and lost disputes hold, refunds and
/// disputes together never pass the captured amount, each dispute is booked once (−amount,
/// its fee), and exactly the won ones are reversed, by exactly their amount.
async fn assert_disputes_consistent(url: &str) {
    let wrong_holds = query_integers(
        url,
        "SELECT count(*) FROM payments p WHERE p.amount_disputed <> (
             SELECT CAST(COALESCE(SUM(d.amount), 0) AS BIGINT) FROM disputes d
             WHERE d.payment_id = p.id AND d.status <> 'won')
         OR p.amount_refunded + p.amount_disputed > p.amount_captured",
    )
    .await;
    assert_eq!(
        wrong_holds,
        vec![0],
        "payments whose amountDisputed is not their disputes', or that give out more than captured"
    );
    let wrong_bookings = query_integers(
        url,
        "SELECT count(*) FROM disputes d WHERE 1 <> (
             SELECT count(*) FROM balance_transactions b WHERE b.source = d.id
                 AND b.type = 'dispute' AND b.amount = -d.amount AND b.fee = d.fee)
         OR (CASE WHEN d.status = 'won' THEN 1 ELSE 0 END) <> (
             SELECT count(*) FROM balance_transactions b WHERE b.source = d.id
                 AND b.type = 'dispute_reversal' AND b.amount = d.amount AND b.fee = 0)
         OR 0 <> (SELECT count(*) FROM balance_transactions b WHERE b.source = d.id
                 AND b.type NOT IN ('dispute', 'dispute_reversal'))",
    )
    .await;
    assert_eq!(
        wrong_bookings,
        vec![0],
        "disputes not booked once, or reversed when not won"
    );
}

/// Checks every settlement against the database: its `net` and `transactionCount` are those of
/// the balance transactions that name it (never a payout), and a paid one's `payout` balance
/// transaction moved exactly `net` (a pending one has none).
pub async fn assert_settlements_consistent(url: &str) {
    let wrong_totals = query_integers(
        url,
        "SELECT count(*) FROM settlements s WHERE s.net <> (
             SELECT CAST(COALESCE(SUM(b.net), 0) AS BIGINT) FROM balance_transactions b
             WHERE b.settlement_id = s.id)
         OR s.disputes <> -(
             SELECT CAST(COALESCE(SUM(b.amount), 0) AS BIGINT) FROM balance_transactions b
             WHERE b.settlement_id = s.id AND b.type IN ('dispute', 'dispute_reversal'))
         OR s.net <> s.gross - s.refunds - s.disputes - s.fees
         OR s.transaction_count <> (
             SELECT count(*) FROM balance_transactions b WHERE b.settlement_id = s.id)",
    )
    .await;
    assert_eq!(
        wrong_totals,
        vec![0],
        "settlements whose totals are not their transactions'"
    );
    let wrong_payouts = query_integers(
        url,
        "SELECT count(*) FROM settlements s WHERE s.status = 'paid' AND s.net <> -(
             SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM ledger_entries e
             JOIN balance_transactions b ON b.id = e.movement_id
             WHERE b.type = 'payout' AND b.source = s.id AND e.ledger_account = 'payouts')
         OR s.status = 'paid' AND s.net <> -(
             SELECT CAST(COALESCE(SUM(b.net), 0) AS BIGINT) FROM balance_transactions b
             WHERE b.type = 'payout' AND b.source = s.id)",
    )
    .await;
    assert_eq!(
        wrong_payouts,
        vec![0],
        "paid settlements whose payout is not their net"
    );
    let early_payouts = query_integers(
        url,
        "SELECT count(*) FROM settlements s WHERE s.status = 'pending'
             AND EXISTS (SELECT 1 FROM balance_transactions b
                 WHERE b.type = 'payout' AND b.source = s.id)",
    )
    .await;
    assert_eq!(
        early_payouts,
        vec![0],
        "pending settlements already paid out"
    );
    let settled_payouts = query_integers(
        url,
        "SELECT count(*) FROM balance_transactions WHERE type = 'payout'
             AND (settlement_id IS NOT NULL OR fee <> 0 OR net <> amount)",
    )
    .await;
    assert_eq!(
        settled_payouts,
        vec![0],
        "payouts gathered into a settlement, or with a fee"
    );
}
