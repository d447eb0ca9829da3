//! Dashboard sessions (SPEC §13): opening one after its key was checked (expired sessions
//! are forgotten on the way), and ending one. The session id itself never reaches the store.

use vinr_domain::UnixMillis;

use crate::store::{DashboardSession, StoreError, Tx};

/// Records a new session and forgets every session that expired before `now`.
pub fn open_session(
    tx: &mut Tx<'_>,
    session: &DashboardSession,
    now: UnixMillis,
) -> Result<(), StoreError> {
    tx.delete_expired_dashboard_sessions(now)?;
    tx.insert_dashboard_session(session)
}

/// Ends the session whose id hashes to `id_hash`; answers whether there was one.
pub fn close_session(tx: &mut Tx<'_>, id_hash: &str) -> Result<bool, StoreError> {
    tx.delete_dashboard_session(id_hash)
}
