//! The auth version on PostgreSQL (see `store/key_cache.rs`): a counter that moves with every
//! `vinr_auth` notification, which the triggers of migration 0015 send at the commit of any
//! write that changes what a key lookup answers, from any node or process. The node listens
//! on a connection of its own, outside the pool. While that connection is down there is no
//! version (the cache is off), and the counter moves when it is up again, since anything may
//! have changed meanwhile. The node's own such commits move the counter too, at once
//! ([`AuthSignal::changed`] after the commit), so a request that follows its own revocation
//! never waits for the notification to come back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};
use vinr_domain::limits::{POSTGRES_LISTEN_HEARTBEAT_MS, POSTGRES_LISTEN_RETRY_MS};

#[derive(Default)]
pub(super) struct AuthSignal {
    epoch: AtomicU64,
    listening: AtomicBool,
}

impl AuthSignal {
    /// The current version, `None` while the node is not listening.
    pub(super) fn version(&self) -> Option<u64> {
        self.listening
            .load(Ordering::Acquire)
            .then(|| self.epoch.load(Ordering::Acquire))
    }

    pub(super) fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn set_listening(&self, listening: bool) {
        // Moved before a version is answered again: what was cached while listening (or
        // before) is of no use once a notification may have been missed.
        self.changed();
        self.listening.store(listening, Ordering::Release);
    }
}

/// The listening task, stopped when the last clone of its store is dropped (or at shutdown).
pub(super) struct Listener(tokio::task::AbortHandle);

impl Listener {
    pub(super) fn stop(&self) {
        self.0.abort();
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens for `vinr_auth` until the task is aborted, opening the connection again after
/// [`POSTGRES_LISTEN_RETRY_MS`] whenever it is lost.
pub(super) fn spawn(config: tokio_postgres::Config, signal: Arc<AuthSignal>) -> Listener {
    Listener(
        tokio::spawn(async move {
            loop {
                if let Err(error) = listen(&config, &signal).await {
                    tracing::warn!(%error, "lost the auth notification connection; key cache off");
                }
                signal.set_listening(false);
                tokio::time::sleep(Duration::from_millis(POSTGRES_LISTEN_RETRY_MS)).await;
            }
        })
        .abort_handle(),
    )
}

/// One listening connection, until it closes or fails. Its messages are read in this task, so
/// that aborting the task closes the connection. A `SELECT 1` every
/// [`POSTGRES_LISTEN_HEARTBEAT_MS`] that does not answer within that time counts as a lost
/// connection: a socket that died silently would otherwise keep the cache on, missing
/// notifications, until the kernel's keepalive gave up.
async fn listen(config: &tokio_postgres::Config, signal: &AuthSignal) -> Result<(), String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let listened = client.batch_execute("LISTEN vinr_auth");
    tokio::pin!(listened);
    let mut listening = false;
    let beat = Duration::from_millis(POSTGRES_LISTEN_HEARTBEAT_MS);
    let mut heartbeat = tokio::time::interval(beat);
    let mut probe = None;
    loop {
        tokio::select! {
            result = &mut listened, if !listening => {
                result.map_err(|e| e.to_string())?;
                listening = true;
                signal.set_listening(true);
            }
            _ = heartbeat.tick(), if listening && probe.is_none() => {
                probe = Some(Box::pin(tokio::time::timeout(beat, client.simple_query("SELECT 1"))));
            }
            answered = async { probe.as_mut().expect("guarded by the branch's condition").await },
                if probe.is_some() => {
                probe = None;
                match answered {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Err(error.to_string()),
                    Err(_) => return Err("the heartbeat went unanswered".into()),
                }
            }
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(_))) => signal.changed(),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.to_string()),
                None => return Ok(()),
            },
        }
    }
}
