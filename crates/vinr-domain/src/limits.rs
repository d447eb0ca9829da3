//! Every limit of the system in one place, unit last. Relations between limits are asserted at
//! compile time so a change to one cannot silently break another.

/// Largest request body the API reads (SPEC §2).
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;
pub const AMOUNT_MINOR_UNITS_MIN: u64 = 1;
pub const AMOUNT_MINOR_UNITS_MAX: u64 = 99_999_999;
pub const DESCRIPTION_LEN_MAX: usize = 1000;
pub const RETURN_URL_LEN_MAX: usize = 2048;
pub const METADATA_KEYS_MAX: usize = 50;
pub const METADATA_KEY_LEN_MAX: usize = 40;
pub const METADATA_VALUE_LEN_MAX: usize = 500;
pub const ACCOUNT_NAME_LEN_MAX: usize = 200;

pub const LIST_LIMIT_DEFAULT: u32 = 25;
pub const LIST_LIMIT_MAX: u32 = 100;

/// How long an unfinished checkout stays open (SPEC §3 default: one hour).
pub const PAYMENT_EXPIRY_MS_DEFAULT: i64 = 60 * 60 * 1000;
/// How long an authorization may wait for capture before it is cancelled (SPEC §3).
pub const AUTHORIZATION_TTL_MS_DEFAULT: i64 = 7 * 24 * 60 * 60 * 1000;
/// Idempotency keys are kept at least this long (SPEC §2: ≥ 24 h).
pub const IDEMPOTENCY_RETENTION_MS_DEFAULT: i64 = 24 * 60 * 60 * 1000;
/// Events are kept this long (SPEC §6).
pub const EVENT_RETENTION_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Flows the SQLite writer runs inside one transaction (one fsync).
pub const WRITE_BATCH_FLOWS_MAX: usize = 512;
/// Flows that may wait for the writer before new writes are refused.
pub const WRITE_QUEUE_FLOWS_MAX: usize = 16 * 1024;
/// Random characters in object ids and checkout tokens (base62, ~5.95 bits each).
pub const ID_RANDOM_CHARS: usize = 24;
pub const CHECKOUT_TOKEN_RANDOM_CHARS: usize = 32;
/// `Retry-After` of a 503 while the database is unavailable (SPEC §2): a PostgreSQL restart
/// or failover takes a few seconds, so clients retry about once a second.
pub const DATABASE_UNAVAILABLE_RETRY_AFTER_S: u64 = 1;
/// After the database last refused or failed to answer, `/readyz` reports not ready this long,
/// also when its own probe passes (a full disk refuses writes while reads still work).
pub const READINESS_OUTAGE_HOLD_MS: u64 = 2_000;
/// Connecting to PostgreSQL gives up after this long (when the URL sets no `connect_timeout`):
/// an unreachable host answers 503 instead of holding requests for the kernel's TCP timeout.
pub const DATABASE_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// A PostgreSQL connection whose sent data stays unacknowledged this long is dead (TCP
/// user timeout), unless the URL sets `tcp_user_timeout`; keepalives probe an idle one after
/// [`DATABASE_KEEPALIVE_IDLE_MS`] (the driver's default is two hours).
pub const DATABASE_TCP_USER_TIMEOUT_MS: u64 = 10_000;
pub const DATABASE_KEEPALIVE_IDLE_MS: u64 = 30_000;
/// A request waits this long for a free PostgreSQL connection before it is answered 503.
pub const DATABASE_POOL_WAIT_TIMEOUT_MS: u64 = 5_000;
/// A webhook attempt's connection must be made within this (or the whole attempt's timeout,
/// if shorter): a receiver that does not accept is not waited for as long as a slow answer.
pub const WEBHOOK_CONNECT_TIMEOUT_S_MAX: u64 = 10;
/// Rows the maintenance worker deletes per statement, so pruning never holds the writer long.
pub const PRUNE_BATCH_ROWS_MAX: usize = 1000;

/// A client must finish a request's headers this long after connecting, or after the first
/// byte of a later request on a kept-alive connection (SPEC §2 "Connections").
pub const HTTP_HEADER_READ_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// A request's whole body must arrive this long after its headers: a client that sends
/// complete headers and then trickles or withholds the body is answered 408 and disconnected
/// instead of holding its connection (and a graceful shutdown) for ever.
pub const HTTP_BODY_READ_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// How long a graceful shutdown waits for open connections to finish before it closes them:
/// in-flight requests finish (the slowest, a webhook test send, within its 30 s attempt), a
/// client that never reads its answer does not keep the process alive.
pub const HTTP_SHUTDOWN_GRACE_MS: u64 = 35_000;
/// A kept-alive connection may wait this long after an answer for its next request.
pub const HTTP_KEEP_ALIVE_IDLE_TIMEOUT_MS_DEFAULT: u64 = 60_000;
/// Bounds of both configurable timeouts: a zero would close every connection at once, and an
/// hour is already far beyond any client that is still there.
pub const HTTP_TIMEOUT_MS_MIN: u64 = 1;
pub const HTTP_TIMEOUT_MS_MAX: u64 = 3_600_000;
/// File descriptors kept back from client connections, out of the process's file limit, for
/// everything else the server opens: stdio, the runtime's epoll and wake-up descriptors, the
/// listener, SQLite's database, WAL and shared-memory files for the writer and each pooled
/// reader (3 each), PostgreSQL's 16 pooled sockets, and webhook sockets (the delivery worker
/// holds up to 1 024 attempts at once, plus a DNS socket while one resolves). No fixed number
/// fits both a 256 and a 1 048 576 limit, so the reserve is a quarter of the limit and at least
/// this many. If the reserve still runs out, `accept` fails with EMFILE, and the accept loop
/// backs off for [`HTTP_ACCEPT_ERROR_BACKOFF_MS`] instead of spinning.
pub const HTTP_FILES_RESERVE_MIN: u64 = 64;
pub const HTTP_FILES_RESERVE_DIVISOR: u64 = 4;
/// The fewest connections a derived cap allows, even under a file limit too small for the
/// reserve (the server still runs; `accept` errors are then backed off from).
pub const HTTP_CONNECTIONS_DERIVED_MIN: usize = 16;
/// The most open connections ever allowed, also under an unlimited file limit (the cap is a
/// semaphore's permit count).
pub const HTTP_CONNECTIONS_MAX: usize = 1 << 20;
/// How long the accept loop pauses after an `accept` that failed for want of resources
/// (EMFILE, ENFILE, ENOBUFS, ENOMEM), so it never spins while connections are being closed.
pub const HTTP_ACCEPT_ERROR_BACKOFF_MS: u64 = 50;
/// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`). std's 128
/// overflowed under 2 000 quick connects while the accept loop was off the CPU on a busy
/// machine: the kernel dropped the SYNs and each client waited a second for its retry.
pub const HTTP_LISTEN_BACKLOG_CONNECTIONS: u32 = 1024;
/// How often the metrics recorder folds buffered histogram samples into its buckets, so
/// memory stays flat whether or not anyone scrapes `/metrics`.
pub const METRICS_UPKEEP_INTERVAL_MS: u64 = 5_000;

const _: () = assert!(AMOUNT_MINOR_UNITS_MIN >= 1);
const _: () = assert!(AMOUNT_MINOR_UNITS_MAX < i64::MAX as u64);
const _: () = assert!(LIST_LIMIT_DEFAULT <= LIST_LIMIT_MAX);
const _: () = assert!(WRITE_BATCH_FLOWS_MAX >= 1 && WRITE_BATCH_FLOWS_MAX <= WRITE_QUEUE_FLOWS_MAX);
// 24 base62 characters carry > 140 bits: ids cannot be guessed or enumerated.
const _: () = assert!(ID_RANDOM_CHARS >= 22);
const _: () = assert!(IDEMPOTENCY_RETENTION_MS_DEFAULT >= 24 * 60 * 60 * 1000);
const _: () = assert!(
    HTTP_TIMEOUT_MS_MIN <= HTTP_HEADER_READ_TIMEOUT_MS_DEFAULT
        && HTTP_HEADER_READ_TIMEOUT_MS_DEFAULT <= HTTP_TIMEOUT_MS_MAX
);
const _: () = assert!(
    HTTP_TIMEOUT_MS_MIN <= HTTP_BODY_READ_TIMEOUT_MS_DEFAULT
        && HTTP_BODY_READ_TIMEOUT_MS_DEFAULT <= HTTP_TIMEOUT_MS_MAX
);
const _: () = assert!(
    HTTP_TIMEOUT_MS_MIN <= HTTP_KEEP_ALIVE_IDLE_TIMEOUT_MS_DEFAULT
        && HTTP_KEEP_ALIVE_IDLE_TIMEOUT_MS_DEFAULT <= HTTP_TIMEOUT_MS_MAX
);
const _: () = assert!(HTTP_FILES_RESERVE_DIVISOR >= 2);
const _: () = assert!(
    HTTP_CONNECTIONS_DERIVED_MIN >= 1 && HTTP_CONNECTIONS_DERIVED_MIN <= HTTP_CONNECTIONS_MAX
);
