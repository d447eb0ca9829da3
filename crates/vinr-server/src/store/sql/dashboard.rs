//! Dashboard sessions (SPEC §13). Everything a page shows is read through the API.

use vinr_domain::UnixMillis;

use super::{args, first, Reader, Row, Run, Sql, Tx};
use crate::store::{DashboardSession, StoreError};

fn session(row: &mut Row) -> Result<DashboardSession, StoreError> {
    Ok(DashboardSession {
        id_hash: row.text()?,
        key_hash: row.text()?,
        scope: row.scope()?,
        created_at: row.at()?,
        expires_at: row.at()?,
    })
}

impl Tx<'_> {
    pub fn insert_dashboard_session(&mut self, s: &DashboardSession) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO dashboard_sessions
                 (id_hash, key_hash, account_id, mode, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        );
        self.execute(
            &INSERT,
            &args![
                &s.id_hash,
                &s.key_hash,
                &s.scope.account_id,
                s.scope.mode,
                s.created_at,
                s.expires_at,
            ],
        )
        .map(drop)
    }

    /// Ends one session; answers whether it existed.
    pub fn delete_dashboard_session(&mut self, id_hash: &str) -> Result<bool, StoreError> {
        static DELETE: Sql = Sql::new("DELETE FROM dashboard_sessions WHERE id_hash = $1");
        Ok(self.execute(&DELETE, &args![id_hash])? == 1)
    }

    /// Ends the sessions of the key hashing to `key_hash` but `new_id_hash` (the one just
    /// opened, kept whatever its place in a tie) and its `keep - 1` newest others; answers how
    /// many ended.
    pub fn delete_oldest_dashboard_sessions(
        &mut self,
        key_hash: &str,
        new_id_hash: &str,
        keep: usize,
    ) -> Result<u64, StoreError> {
        static DELETE: Sql = Sql::new(
            "DELETE FROM dashboard_sessions WHERE key_hash = $1 AND id_hash <> $2
                 AND id_hash NOT IN (
                     SELECT id_hash FROM dashboard_sessions WHERE key_hash = $1 AND id_hash <> $2
                     ORDER BY created_at DESC, id_hash DESC LIMIT $3)",
        );
        self.execute(
            &DELETE,
            &args![key_hash, new_id_hash, keep.saturating_sub(1)],
        )
    }

    /// Forgets sessions that expired before `now`; answers how many.
    pub fn delete_expired_dashboard_sessions(
        &mut self,
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        static DELETE: Sql = Sql::new("DELETE FROM dashboard_sessions WHERE expires_at <= $1");
        self.execute(&DELETE, &args![now])
    }
}

impl Reader<'_> {
    /// The session whose id hashes to `id_hash`, expired or not (the caller checks).
    pub fn dashboard_session(
        &mut self,
        id_hash: &str,
    ) -> Result<Option<DashboardSession>, StoreError> {
        static GET: Sql = Sql::new(
            "SELECT id_hash, key_hash, account_id, mode, created_at, expires_at
             FROM dashboard_sessions WHERE id_hash = $1",
        );
        first(self.query_opt(&GET, &args![id_hash])?, session)
    }
}
