//! Accounts, API keys and platform keys: creation, renaming, deletion (and the test-mode
//! reset of an account's data), revocation and the first start (the sandbox account and
//! the card fingerprint secret). Keys are shown
//! once, here, and stored only as a SHA-256 hash.

use vinr_domain::ids::{new_id, Prefix};
use vinr_domain::limits::ACCOUNT_NAME_LEN_MAX;
use vinr_domain::{Mode, UnixMillis};

use super::FlowError;
use crate::keys::{self, SecretKey};
use crate::store::{
    AccountRecord, ApiKeyRecord, DeletedData, KeyKind, PlatformKeyRecord, Tx, WebhookEndpoints,
};

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
    insert_key(
        tx,
        account_id,
        mode,
        kind,
        scopes,
        keys::generate_key(kind, mode),
        now,
    )
}

/// Stores `secret` (as its hash) as a key of `account_id`.
fn insert_key(
    tx: &mut Tx<'_>,
    account_id: &str,
    mode: Mode,
    kind: KeyKind,
    scopes: Vec<String>,
    secret: SecretKey,
    now: UnixMillis,
) -> Result<CreatedKey, FlowError> {
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
    create_account_with(tx, name, now, None)
}

/// [`create_account`], its key `secret` when given (a fixed sandbox key), else generated.
fn create_account_with(
    tx: &mut Tx<'_>,
    name: &str,
    now: UnixMillis,
    secret: Option<&SecretKey>,
) -> Result<(AccountRecord, CreatedKey), FlowError> {
    let name = account_name(name)?;
    let account = AccountRecord {
        id: new_id(Prefix::Account, now),
        name: name.to_owned(),
        created_at: now,
    };
    tx.insert_account(&account)?;
    let secret = secret
        .cloned()
        .unwrap_or_else(|| keys::generate_key(KeyKind::Secret, Mode::Test));
    let key = insert_key(
        tx,
        &account.id,
        Mode::Test,
        KeyKind::Secret,
        Vec::new(),
        secret,
        now,
    )?;
    Ok((account, key))
}

/// The setting naming the sandbox account (`""` when a database served before this was
/// recorded has none known). Its presence means the first start has happened, so an account
/// made by `vinr accounts create` before the first `vinr serve` does not stand in for it.
const SANDBOX_ACCOUNT_SETTING: &str = "sandbox_account";
const FINGERPRINT_SECRET_SETTING: &str = "card_fingerprint_secret";

/// What the first start did about the sandbox account.
pub enum SandboxStart {
    /// The database's first start (or, with a fixed key, a start that found no sandbox
    /// account) made the sandbox account with this key: generated, or the fixed one.
    Created {
        account: AccountRecord,
        key: CreatedKey,
    },
    /// The fixed key was missing: it was added to the existing sandbox account.
    KeyAdded { account_id: String, key: CreatedKey },
    /// The fixed key exists but was revoked (`vinr keys revoke`); it stays revoked.
    KeyRevoked { key_id: String },
}

/// Makes sure of the sandbox account: on the database's first start it is created (with
/// `fixed` as its key when given); on a later start with `fixed`, that key is made to exist
/// (added to the sandbox account, or to a new one if there is none). Nothing otherwise.
pub fn bootstrap(
    tx: &mut Tx<'_>,
    now: UnixMillis,
    fixed: Option<&SecretKey>,
) -> Result<Option<SandboxStart>, FlowError> {
    // Nodes starting together on one database: the second waits here, then sees the first's
    // account and key (and, in `fingerprint_secret`, its secret).
    tx.lock_exclusive("bootstrap")?;
    let recorded = match tx.get_setting(SANDBOX_ACCOUNT_SETTING)? {
        Some(account_id) => Some(account_id),
        // Served before the setting existed: its first start is long done (it made the
        // fingerprint secret); which account was its sandbox is not known.
        None if tx.get_setting(FINGERPRINT_SECRET_SETTING)?.is_some() => {
            tx.put_setting(SANDBOX_ACCOUNT_SETTING, "")?;
            Some(String::new())
        }
        None => None,
    };
    let Some(account_id) = recorded else {
        return create_sandbox(tx, now, fixed).map(Some);
    };
    let Some(fixed) = fixed else {
        return Ok(None);
    };
    // The hash covers the `sk_test_` prefix: a match is a secret test key.
    if let Some(existing) = tx.api_key_of_hash(&keys::hash_key(fixed.expose()))? {
        return Ok(existing.revoked_at.map(|_| SandboxStart::KeyRevoked {
            key_id: existing.id,
        }));
    }
    if account_id.is_empty() || !tx.account_exists(&account_id)? {
        return create_sandbox(tx, now, Some(fixed)).map(Some);
    }
    let key = insert_key(
        tx,
        &account_id,
        Mode::Test,
        KeyKind::Secret,
        Vec::new(),
        fixed.clone(),
        now,
    )?;
    Ok(Some(SandboxStart::KeyAdded { account_id, key }))
}

fn create_sandbox(
    tx: &mut Tx<'_>,
    now: UnixMillis,
    fixed: Option<&SecretKey>,
) -> Result<SandboxStart, FlowError> {
    let (account, key) = create_account_with(tx, "Sandbox", now, fixed)?;
    tx.put_setting(SANDBOX_ACCOUNT_SETTING, &account.id)?;
    Ok(SandboxStart::Created { account, key })
}

/// What a server needs of the database before it serves: the sandbox account ([`bootstrap`])
/// and the card fingerprint secret.
pub fn first_start(
    tx: &mut Tx<'_>,
    now: UnixMillis,
    fixed: Option<&SecretKey>,
) -> Result<(Option<SandboxStart>, String), FlowError> {
    let sandbox = bootstrap(tx, now, fixed)?;
    let secret = fingerprint_secret(tx)?;
    Ok((sandbox, secret))
}

/// The server-wide secret that keys card fingerprints, created on first use.
pub fn fingerprint_secret(tx: &mut Tx<'_>) -> Result<String, FlowError> {
    if let Some(secret) = tx.get_setting(FINGERPRINT_SECRET_SETTING)? {
        return Ok(secret);
    }
    let secret = vinr_domain::ids::random_base62(43);
    tx.put_setting(FINGERPRINT_SECRET_SETTING, &secret)?;
    Ok(secret)
}

/// An account's name as stored: trimmed, 1 to [`ACCOUNT_NAME_LEN_MAX`] characters, no control
/// characters (the HTTP layer refuses those first; the command line relies on this check).
fn account_name(name: &str) -> Result<&str, FlowError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > ACCOUNT_NAME_LEN_MAX {
        return Err(FlowError::Invalid {
            param: "name",
            message: format!("an account name has 1 to {ACCOUNT_NAME_LEN_MAX} characters"),
        });
    }
    if name.chars().any(char::is_control) {
        return Err(FlowError::Invalid {
            param: "name",
            message: "an account name may hold no control characters".into(),
        });
    }
    Ok(name)
}

/// Renames an account (the name the checkout page shows).
pub fn rename_account(
    tx: &mut Tx<'_>,
    account_id: &str,
    name: &str,
) -> Result<AccountRecord, FlowError> {
    let name = account_name(name)?;
    tx.rename_account(account_id, name)?
        .ok_or_else(|| FlowError::NotFound {
            object: "account",
            id: account_id.to_owned(),
        })
}

/// Deletes an account, its keys and all its test-mode data, in one transaction; refused
/// (nothing changes) while it has live-mode objects.
pub fn delete_account(tx: &mut Tx<'_>, account_id: &str) -> Result<(), FlowError> {
    if !tx.account_exists(account_id)? {
        return Err(FlowError::NotFound {
            object: "account",
            id: account_id.to_owned(),
        });
    }
    let live = tx.count_account_objects(account_id, Mode::Live)?.total();
    if live > 0 {
        return Err(FlowError::AccountHasLiveData {
            account_id: account_id.to_owned(),
            objects: live,
        });
    }
    // The account's row first, as a move of its clock takes it (see `reset_test_data`).
    tx.clock_offset_for_update(account_id)?;
    tx.delete_account_data(account_id, Mode::Test, WebhookEndpoints::Delete)?;
    tx.delete_account(account_id)?;
    Ok(())
}

/// The test-mode reset (`POST /v1/test_helpers/reset`): deletes everything `account_id` holds
/// in test mode, in one transaction, and answers what it deleted. The account and its keys
/// stay, its webhook endpoints too unless `endpoints` says otherwise; live mode is never
/// touched (the mode is fixed here, not taken from the caller).
pub fn reset_test_data(
    tx: &mut Tx<'_>,
    account_id: &str,
    endpoints: WebhookEndpoints,
) -> Result<DeletedData, FlowError> {
    // The account's row first, as a move of its clock takes it: the two never wait for each
    // other in a circle.
    tx.clock_offset_for_update(account_id)?;
    let deleted = tx.delete_account_data(account_id, Mode::Test, endpoints)?;
    // Its test clock back to real time (SPEC §10).
    tx.reset_clock(account_id)?;
    Ok(deleted)
}

/// A platform key as created: the record and, once only, the secret itself.
pub struct CreatedPlatformKey {
    pub record: PlatformKeyRecord,
    pub secret: SecretKey,
}

fn platform_key_record(secret: &str, source: &str, now: UnixMillis) -> PlatformKeyRecord {
    PlatformKeyRecord {
        id: new_id(Prefix::PlatformKey, now),
        key_hash: keys::hash_key(secret),
        display: keys::display_key(secret),
        source: source.to_owned(),
        created_at: now,
        revoked_at: None,
    }
}

/// A new platform key (`vinr platform-keys create`), shown once.
pub fn create_platform_key(
    tx: &mut Tx<'_>,
    now: UnixMillis,
) -> Result<CreatedPlatformKey, FlowError> {
    let secret = keys::generate_platform_key();
    let record = platform_key_record(secret.expose(), "cli", now);
    tx.insert_platform_key(&record)?;
    Ok(CreatedPlatformKey { record, secret })
}

/// Revokes a platform key; answers whether an unrevoked key with this id was found.
pub fn revoke_platform_key(
    tx: &mut Tx<'_>,
    key_id: &str,
    now: UnixMillis,
) -> Result<bool, FlowError> {
    Ok(tx.revoke_platform_key(key_id, now)?)
}

/// Makes sure the platform key `secret` (from `VINR_PLATFORM_KEY`) exists, stored by its hash;
/// a start with the same value finds it and keeps it. The variable names one key: a start with
/// another value revokes the key an earlier value made (keys from `vinr platform-keys create`
/// stay). Answers whether it was added now.
pub fn ensure_platform_key(
    tx: &mut Tx<'_>,
    secret: &str,
    now: UnixMillis,
) -> Result<bool, FlowError> {
    if !keys::is_platform_key_shape(secret) {
        return Err(FlowError::Invalid {
            param: "VINR_PLATFORM_KEY",
            message: format!(
                "a platform key is `plk_` and {} to {} characters of A-Z a-z 0-9 _ -",
                vinr_domain::limits::PLATFORM_KEY_SECRET_CHARS_MIN,
                vinr_domain::limits::PLATFORM_KEY_SECRET_CHARS_MAX
            ),
        });
    }
    // Nodes starting together with one value: the second waits, then finds the first's row.
    tx.lock_exclusive("platform_key")?;
    let hash = keys::hash_key(secret);
    tx.revoke_other_env_platform_keys(&hash, now)?;
    match tx.platform_key_by_hash_in_tx(&hash)? {
        // Revoked (or made by the command line): the value stays as it is.
        Some(_) => Ok(false),
        None => {
            tx.insert_platform_key(&platform_key_record(secret, "env", now))?;
            Ok(true)
        }
    }
}
