//! Platform keys (`plk_…`): the keys that manage accounts. Looked up by their SHA-256 only.

use vinr_domain::UnixMillis;

use super::{args, first, rows, Reader, Row, Run, Sql, Tx};
use crate::store::{PlatformKeyRecord, StoreError};

pub const COLUMNS: &str = "id, key_hash, display, source, created_at, revoked_at";

fn platform_key(row: &mut Row) -> Result<PlatformKeyRecord, StoreError> {
    Ok(PlatformKeyRecord {
        id: row.text()?,
        key_hash: row
            .bytes()?
            .try_into()
            .map_err(|_| super::corrupt("platform key hash", "of wrong length"))?,
        display: row.text()?,
        source: row.text()?,
        created_at: row.at()?,
        revoked_at: row.opt_at()?,
    })
}

static BY_HASH: Sql =
    Sql::new("SELECT {platform_key_columns} FROM platform_keys WHERE key_hash = $1");

impl Tx<'_> {
    pub fn insert_platform_key(&mut self, key: &PlatformKeyRecord) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO platform_keys (id, key_hash, display, source, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        );
        self.execute(
            &INSERT,
            &args![
                &key.id,
                &key.key_hash[..],
                &key.display,
                &key.source,
                key.created_at,
                key.revoked_at,
            ],
        )
        .map(drop)
    }

    /// Revokes every platform key taken from `VINR_PLATFORM_KEY` but the one with `key_hash`;
    /// answers how many.
    pub fn revoke_other_env_platform_keys(
        &mut self,
        key_hash: &[u8; 32],
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        static REVOKE: Sql = Sql::new(
            "UPDATE platform_keys SET revoked_at = $2
             WHERE source = 'env' AND key_hash <> $1 AND revoked_at IS NULL",
        );
        self.execute(&REVOKE, &args![&key_hash[..], now])
    }

    /// Marks a platform key revoked; answers whether an unrevoked key with this id was found.
    pub fn revoke_platform_key(
        &mut self,
        key_id: &str,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        static REVOKE: Sql = Sql::new(
            "UPDATE platform_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        );
        Ok(self.execute(&REVOKE, &args![key_id, now])? == 1)
    }

    /// The platform key with this hash, as the transaction sees it.
    pub fn platform_key_by_hash_in_tx(
        &mut self,
        key_hash: &[u8; 32],
    ) -> Result<Option<PlatformKeyRecord>, StoreError> {
        first(
            self.query_opt(&BY_HASH, &args![&key_hash[..]])?,
            platform_key,
        )
    }
}

impl Reader<'_> {
    /// Every platform key, oldest first (never the secrets: they are not stored).
    pub fn list_platform_keys(&mut self) -> Result<Vec<PlatformKeyRecord>, StoreError> {
        static LIST: Sql =
            Sql::new("SELECT {platform_key_columns} FROM platform_keys ORDER BY created_at, id");
        rows(self.query(&LIST, &[])?, platform_key)
    }

    pub fn platform_key_by_hash(
        &mut self,
        key_hash: &[u8; 32],
    ) -> Result<Option<PlatformKeyRecord>, StoreError> {
        first(
            self.query_opt(&BY_HASH, &args![&key_hash[..]])?,
            platform_key,
        )
    }
}
