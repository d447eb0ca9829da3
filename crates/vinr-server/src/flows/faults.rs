//! Fault rules (SPEC §12): made, cleared, and counted down by the requests they hit.

use vinr_domain::fault::{FaultRule, RequestFault};
use vinr_domain::limits::TEST_FAULT_RULES_PER_ACCOUNT_MAX;

use super::FlowError;
use crate::store::Tx;

/// Adds `rule`, unless its account already holds the most rules it may. The account row is
/// locked first, so that rules made at once on several nodes are counted one after another.
pub fn create_rule(tx: &mut Tx<'_>, rule: &FaultRule) -> Result<(), FlowError> {
    tx.clock_offset_for_update(&rule.account_id)?;
    let held = tx.count_fault_rules(&rule.account_id)?;
    if held >= TEST_FAULT_RULES_PER_ACCOUNT_MAX as u64 {
        return Err(FlowError::Invalid {
            param: "path",
            message: format!(
                "An account holds at most {TEST_FAULT_RULES_PER_ACCOUNT_MAX} fault rules; \
                 clear them with DELETE /v1/test_helpers/faults."
            ),
        });
    }
    tx.insert_fault_rule(rule)?;
    Ok(())
}

/// Deletes every rule of the account; answers how many.
pub fn clear_rules(tx: &mut Tx<'_>, account_id: &str) -> Result<u64, FlowError> {
    Ok(tx.clear_fault_rules(account_id)?)
}

/// The fault of the account's oldest rule that matches `method` and `path`, counted down by
/// one (a rule at its last count is deleted); `None` when no rule matches. The rules are
/// locked first, so that concurrent requests (on any node) take each count exactly once.
pub fn take_matching(
    tx: &mut Tx<'_>,
    account_id: &str,
    method: &str,
    path: &str,
) -> Result<Option<(String, RequestFault)>, FlowError> {
    let rules = tx.lock_fault_rules(account_id, method)?;
    let Some(rule) = rules.into_iter().find(|rule| rule.matches(method, path)) else {
        return Ok(None);
    };
    match rule.remaining {
        0 | 1 => tx.delete_fault_rule(&rule.id)?,
        remaining => tx.set_fault_rule_remaining(&rule.id, remaining - 1)?,
    }
    Ok(Some((rule.id, rule.fault)))
}
