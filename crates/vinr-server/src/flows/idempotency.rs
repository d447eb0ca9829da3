//! Idempotency keys inside a transaction (SPEC §2): the key's lock and its stored answer, read
//! and written through [`Tx`] like any other state. What a stored answer means for a request,
//! and when these run, is the business of the idempotency module (`src/idempotency/`).

use vinr_domain::UnixMillis;

use super::FlowError;
use crate::store::{IdempotencyScope, StoredResponse, Tx};

/// Where a keyed request stands once its transaction holds the key.
pub enum Begin {
    /// Nothing is stored for the key: the request runs in this transaction.
    Fresh,
    /// The answer committed with the first request's effects.
    Answered(StoredResponse),
    /// Another node's request with this key holds it.
    InUse,
}

/// Locks `key` for this transaction (a lock every node sees on a shared database) and answers
/// what is stored for it.
pub fn begin(tx: &mut Tx<'_>, key: &IdempotencyScope) -> Result<Begin, FlowError> {
    // The authoritative answer: committed with the first request's effects.
    Ok(match tx.claim_idempotency_key(key)? {
        None => Begin::InUse,
        Some(Some(stored)) => Begin::Answered(stored),
        Some(None) => Begin::Fresh,
    })
}

/// Stores `response` as the answer for `key`, in the transaction of the effects it answers.
pub fn save(
    tx: &mut Tx<'_>,
    key: &IdempotencyScope,
    response: &StoredResponse,
    now: UnixMillis,
) -> Result<(), FlowError> {
    tx.save_idempotent_response(key, response, now)?;
    Ok(())
}

/// Stores `refusal` as the answer for `key` (the refused request's effects were rolled back
/// with its transaction), unless an answer was stored meanwhile: that one is answered and wins.
pub fn keep_refusal(
    tx: &mut Tx<'_>,
    key: &IdempotencyScope,
    refusal: &StoredResponse,
    now: UnixMillis,
) -> Result<Option<StoredResponse>, FlowError> {
    match begin(tx, key)? {
        // Another node running this key now will store its own answer: leave it to that.
        Begin::InUse => Ok(None),
        Begin::Answered(stored) => Ok(Some(stored)),
        Begin::Fresh => {
            save(tx, key, refusal, now)?;
            Ok(None)
        }
    }
}

/// The answer stored for `key`, if its first request has completed.
pub fn stored_response(
    tx: &mut Tx<'_>,
    key: &IdempotencyScope,
) -> Result<Option<StoredResponse>, FlowError> {
    Ok(tx.find_idempotent_response(key)?)
}
