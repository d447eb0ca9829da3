//! The auth version on PostgreSQL (see `store/key_cache.rs`): a counter that moves with every
//! `vinr_auth` notification, which the triggers of migration 0015 send at the commit of any
//! write that changes what a key lookup answers, from any node or process. The node listens
//! on a connection of its own, outside the pool. While that connection is down there is no
//! version (the cache is off), and the counter moves when it is up again, since anything may
//! have changed meanwhile. The node's own such commits move the counter too, at once
//! ([`AuthSignal::changed`] after the commit), so a request that follows its own revocation
//! never waits for the notification to come back.
//!
//! A notification is asynchronous: another process's revocation is acknowledged to it before
//! this node has read the notification, so a version read at once could still be the old one.
//! A version is therefore only answered behind a *fence*: a `SELECT 1` on the listening
//! connection sent after the caller asked. PostgreSQL signals every listening session before
//! it acknowledges the notifying commit, and a signalled session sends its notifications to
//! its client before the `ReadyForQuery` of any later query (`postgres.c`: "they'll be seen by
//! the client before ReadyForQuery is"); this task reads the connection's messages in order,
//! so by the time the fence is answered every notification committed before the caller asked
//! has moved the counter. One fence answers every caller that asked before it was sent, so
//! under load one round trip serves many requests; it doubles as the heartbeat.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_postgres::{AsyncMessage, NoTls};
use vinr_domain::limits::{POSTGRES_LISTEN_HEARTBEAT_MS, POSTGRES_LISTEN_RETRY_MS};

pub(super) struct AuthSignal {
    epoch: AtomicU64,
    listening: AtomicBool,
    /// How many fences callers have asked for; a fence answers all asked before it was sent.
    fences_asked: AtomicU64,
    fence_wanted: Notify,
    /// The number of asked fences answered so far.
    fences_answered: watch::Sender<u64>,
}

impl Default for AuthSignal {
    fn default() -> AuthSignal {
        AuthSignal {
            epoch: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            fences_asked: AtomicU64::new(0),
            fence_wanted: Notify::new(),
            fences_answered: watch::Sender::new(0),
        }
    }
}

impl AuthSignal {
    /// The current version once every notification committed before this call has been read;
    /// `None` while the node is not listening, or when the fence is not answered within
    /// [`POSTGRES_LISTEN_HEARTBEAT_MS`] (the connection is then about to be counted lost).
    pub(super) async fn version(&self) -> Option<u64> {
        self.current()?;
        let mut answered = self.fences_answered.subscribe();
        let mine = self.fences_asked.fetch_add(1, Ordering::AcqRel) + 1;
        self.fence_wanted.notify_one();
        let fenced = tokio::time::timeout(
            Duration::from_millis(POSTGRES_LISTEN_HEARTBEAT_MS),
            answered.wait_for(|answered| *answered >= mine),
        )
        .await;
        match fenced {
            Ok(Ok(_)) => self.current(),
            _ => None,
        }
    }

    /// The version as it stands, `None` while the node is not listening.
    fn current(&self) -> Option<u64> {
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
        if !listening {
            // Whoever waits for a fence now finds the node not listening (and reads the key).
            self.fences_answered
                .send_replace(self.fences_asked.load(Ordering::Acquire));
        }
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

/// The `application_name` of the listening connection, so that an operator (or a test) can
/// tell it apart in `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "vinr auth listener";

/// Listens for `vinr_auth` until the task is aborted, opening the connection again after
/// [`POSTGRES_LISTEN_RETRY_MS`] whenever it is lost.
pub(super) fn spawn(mut config: tokio_postgres::Config, signal: Arc<AuthSignal>) -> Listener {
    config.application_name(LISTENER_APPLICATION_NAME);
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
    // The fences the probe in flight answers: those asked before it was sent.
    let mut covering = 0;
    loop {
        tokio::select! {
            result = &mut listened, if !listening => {
                result.map_err(|e| e.to_string())?;
                listening = true;
                signal.set_listening(true);
            }
            _ = heartbeat.tick(), if listening && probe.is_none() => {
                covering = signal.fences_asked.load(Ordering::Acquire);
                probe = Some(Box::pin(tokio::time::timeout(beat, client.simple_query("SELECT 1"))));
            }
            _ = signal.fence_wanted.notified(), if listening && probe.is_none() => {
                covering = signal.fences_asked.load(Ordering::Acquire);
                probe = Some(Box::pin(tokio::time::timeout(beat, client.simple_query("SELECT 1"))));
            }
            answered = async { probe.as_mut().expect("guarded by the branch's condition").await },
                if probe.is_some() => {
                probe = None;
                match answered {
                    Ok(Ok(_)) => {
                        signal.fences_answered.send_replace(covering);
                    }
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
