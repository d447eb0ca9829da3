//! Checks of the ledger that the API cannot show, read from the database itself.

use super::database::query_integers;

/// Checks the ledger in the database: every movement sums to zero, every balance transaction
/// has entries whose merchant side equals its `net`, and nothing else is in the ledger.
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
         WHERE NOT EXISTS (SELECT 1 FROM balance_transactions b WHERE b.id = e.movement_id)
             AND NOT EXISTS (SELECT 1 FROM settlements s WHERE s.id = e.movement_id)",
    )
    .await;
    assert_eq!(
        orphans,
        vec![0],
        "entries of no balance transaction or payout"
    );
}

/// Checks every settlement against the database: its `net` and `transactionCount` are those of
/// the balance transactions that name it, and a paid one's payout moved exactly `net`.
pub async fn assert_settlements_consistent(url: &str) {
    let wrong_totals = query_integers(
        url,
        "SELECT count(*) FROM settlements s WHERE s.net <> (
             SELECT CAST(COALESCE(SUM(b.net), 0) AS BIGINT) FROM balance_transactions b
             WHERE b.settlement_id = s.id)
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
             WHERE e.movement_id = s.id AND e.ledger_account = 'payouts')",
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
             AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.movement_id = s.id)",
    )
    .await;
    assert_eq!(
        early_payouts,
        vec![0],
        "pending settlements already paid out"
    );
}
