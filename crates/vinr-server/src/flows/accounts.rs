//! Accounts and API keys: creation, revocation and the first start (the sandbox account and
//! the card fingerprint secret). Keys are shown
//! once, here, and stored only as a SHA-256 hash.

use vinr_domain::ids::{new_id, Prefix};
use vinr_domain::limits::ACCOUNT_NAME_LEN_MAX;
use vinr_domain::{Mode, UnixMillis};

use super::FlowError;
use crate::keys::{self, SecretKey};
use crate::store::{AccountRecord, ApiKeyRecord, KeyKind, Tx};

/// A key as created: the record and, once only, the secret itself.
pub struct CreatedKey {
    pub record: ApiKeyRecord,
    pub secret: SecretKey,
}

pub fn create_key(
    tx: &mut Tx<'_>,
    account_id: &str,
    mode: Mode,
    scopes: Vec<String>,
    now: UnixMillis,
) -> Result<CreatedKey, FlowError> {
    if !tx.account_exists(account_id)? {
        return Err(FlowError::NotFound {
            object: "account",
            id: account_id.to_owned(),
        });
    }
    let kind = if scopes.is_empty() {
        KeyKind::Secret
    } else {
        KeyKind::Restricted
    };
    let secret = keys::generate_key(kind, mode);
    let record = ApiKeyRecord {
        id: new_id(Prefix::ApiKey, now),
        account_id: account_id.to_owned(),
        mode,
        kind,
        scopes,
        key_hash: keys::hash_key(secret.expose()),
        display: keys::display_key(secret.expose()),
        created_at: now,
        revoked_at: None,
    };
    tx.insert_api_key(&record)?;
    Ok(CreatedKey { record, secret })
}

/// Revokes a key; answers whether a live (unrevoked) key with this id was found.
pub fn revoke_key(tx: &mut Tx<'_>, key_id: &str, now: UnixMillis) -> Result<bool, FlowError> {
    Ok(tx.revoke_api_key(key_id, now)?)
}

/// Creates an account and its first secret test key.
pub fn create_account(
    tx: &mut Tx<'_>,
    name: &str,
    now: UnixMillis,
) -> Result<(AccountRecord, CreatedKey), FlowError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > ACCOUNT_NAME_LEN_MAX {
        return Err(FlowError::Invalid {
            param: "name",
            message: format!("an account name has 1 to {ACCOUNT_NAME_LEN_MAX} characters"),
        });
    }
    let account = AccountRecord {
        id: new_id(Prefix::Account, now),
        name: name.to_owned(),
        created_at: now,
    };
    tx.insert_account(&account)?;
    let key = create_key(tx, &account.id, Mode::Test, Vec::new(), now)?;
    Ok((account, key))
}

/// On an empty database, creates the sandbox account; answers its key to print.
pub fn bootstrap(
    tx: &mut Tx<'_>,
    now: UnixMillis,
) -> Result<Option<(AccountRecord, CreatedKey)>, FlowError> {
    // Nodes starting together on one database: the second waits here, then sees the first's
    // account (and, in `fingerprint_secret`, its secret).
    tx.lock_exclusive("bootstrap")?;
    if tx.count_accounts()? > 0 {
        return Ok(None);
    }
    create_account(tx, "Sandbox", now).map(Some)
}

/// What a server needs of the database before it serves: the sandbox account on an empty
/// database (its key to print) and the card fingerprint secret.
pub fn first_start(
    tx: &mut Tx<'_>,
    now: UnixMillis,
) -> Result<(Option<(AccountRecord, CreatedKey)>, String), FlowError> {
    let bootstrapped = bootstrap(tx, now)?;
    let secret = fingerprint_secret(tx)?;
    Ok((bootstrapped, secret))
}

/// The server-wide secret that keys card fingerprints, created on first use.
pub fn fingerprint_secret(tx: &mut Tx<'_>) -> Result<String, FlowError> {
    const NAME: &str = "card_fingerprint_secret";
    if let Some(secret) = tx.get_setting(NAME)? {
        return Ok(secret);
    }
    let secret = vinr_domain::ids::random_base62(43);
    tx.put_setting(NAME, &secret)?;
    Ok(secret)
}
