//! Dashboard sessions (SPEC §13): opening one after its key was checked (expired sessions
//! are forgotten on the way, and a key keeps at most `DASHBOARD_SESSIONS_PER_KEY_MAX` live:
//! its oldest end), and ending one. The session id itself never reaches the store.

use vinr_domain::limits::DASHBOARD_SESSIONS_PER_KEY_MAX;
use vinr_domain::UnixMillis;

use crate::store::{DashboardSession, StoreError, Tx};

/// Records a new session, forgets every session that expired before `now`, and ends the
/// key's oldest sessions past the cap.
pub fn open_session(
    tx: &mut Tx<'_>,
    session: &DashboardSession,
    now: UnixMillis,
) -> Result<(), StoreError> {
    tx.delete_expired_dashboard_sessions(now)?;
    tx.insert_dashboard_session(session)?;
    tx.delete_oldest_dashboard_sessions(
        &session.key_hash,
        &session.id_hash,
        DASHBOARD_SESSIONS_PER_KEY_MAX,
    )
    .map(drop)
}

/// Ends the session whose id hashes to `id_hash`; answers whether there was one.
pub fn close_session(tx: &mut Tx<'_>, id_hash: &str) -> Result<bool, StoreError> {
    tx.delete_dashboard_session(id_hash)
}
