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
