//! Every limit of the system in one place, unit last. Relations between limits are asserted at
//! compile time so a change to one cannot silently break another.

/// Largest request body the API reads (SPEC §2).
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;
pub const AMOUNT_MINOR_UNITS_MIN: u64 = 1;
pub const AMOUNT_MINOR_UNITS_MAX: u64 = 99_999_999;
/// A payment's `description` (SPEC §3: at most 1000 characters).
pub const PAYMENT_DESCRIPTION_CHARS_MAX: usize = 1000;
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
/// How long a merchant has to answer a dispute (SPEC §11: `evidenceDueBy`, 7 days).
pub const DISPUTE_EVIDENCE_DUE_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Each evidence field of a dispute (SPEC §11).
pub const DISPUTE_EVIDENCE_CHARS_MAX: usize = 5_000;
/// The fee per dispute when `[pricing] dispute_fee_minor` does not say (SPEC §11).
pub const DISPUTE_FEE_MINOR_DEFAULT: u64 = 1_500;
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

/// Random base62 characters in an API key: 43 carry 256 bits (SPEC §2 asks for at least 192).
pub const API_KEY_RANDOM_CHARS: usize = 43;
/// Random base62 characters of a generated platform key (`plk_…`): 256 bits, as API keys.
pub const PLATFORM_KEY_RANDOM_CHARS: usize = 43;
/// Characters a platform key given in `VINR_PLATFORM_KEY` has after `plk_`, at least (SPEC
/// §10) and at most (a bound on what is hashed per request).
pub const PLATFORM_KEY_SECRET_CHARS_MIN: usize = 32;
pub const PLATFORM_KEY_SECRET_CHARS_MAX: usize = 128;
/// Fewest characters after `sk_test_` in a fixed sandbox key (`VINR_SANDBOX_SECRET_KEY`,
/// SPEC §10): chosen by the operator, not generated.
pub const SANDBOX_SECRET_KEY_CHARS_MIN: usize = 32;
/// Most characters after the prefix of any API key accepted (generated keys have
/// [`API_KEY_RANDOM_CHARS`]; a fixed sandbox key may have more).
pub const API_KEY_CHARS_MAX: usize = 128;
/// Random base62 characters in the checkout's CSRF cookie (~190 bits, at least 128 asked).
pub const CSRF_COOKIE_RANDOM_CHARS: usize = 32;
/// Longest checkout token looked up: a few time characters plus the random part fit easily.
pub const CHECKOUT_TOKEN_BYTES_MAX: usize = 64;
/// Largest checkout form body read; a card form is a few hundred bytes.
pub const CHECKOUT_FORM_BYTES_MAX: usize = 8 * 1024;

/// Random base62 characters of a dashboard session id (SPEC §13): ~256 bits.
pub const DASHBOARD_SESSION_ID_RANDOM_CHARS: usize = 43;
/// How long a dashboard session lasts after sign-in; it is never extended.
pub const DASHBOARD_SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;
/// Live dashboard sessions one key may have; signing in once more ends its oldest.
pub const DASHBOARD_SESSIONS_PER_KEY_MAX: usize = 8;
/// Sign-ins one client address may try per minute (a burst of as many), valid key or not:
/// each costs a key lookup and a session write.
pub const DASHBOARD_SIGN_INS_PER_ADDRESS_PER_MINUTE: u32 = 10;
/// Client addresses the sign-in throttle remembers before it forgets the idle ones.
pub const DASHBOARD_SIGN_IN_ADDRESSES_MAX: usize = 10_000;
/// In-process API calls one dashboard page makes at most (the overview's chart reads up to
/// `DASHBOARD_CHART_PAYMENTS_MAX / 100` pages); the page view itself takes one token of the
/// key's rate limit, whatever it calls.
pub const DASHBOARD_PAGE_CALLS_MAX: usize = 64;
/// Objects (the payment, then its refunds and disputes) whose ledger rows a payment's page
/// reads, one API list each.
pub const DASHBOARD_LEDGER_SOURCES_MAX: usize = 20;
/// Transactions a settlement's page shows (100 per API page); the CSV has every one.
pub const DASHBOARD_SETTLEMENT_ROWS_MAX: usize = 2_000;
/// Events shown on one payment's timeline (its own, its refunds' and its disputes'); the
/// older ones are a link away, on the events page.
pub const DASHBOARD_TIMELINE_EVENTS_MAX: usize = 500;
/// Events per API page the timeline reads (the API's largest page): so at most
/// `DASHBOARD_TIMELINE_EVENTS_MAX / DASHBOARD_TIMELINE_PAGE_EVENTS` calls.
pub const DASHBOARD_TIMELINE_PAGE_EVENTS: usize = 100;
/// Days of the overview's chart of payments per day.
pub const DASHBOARD_CHART_DAYS: i64 = 30;
/// Payments the overview's chart reads at most (100 per API page).
pub const DASHBOARD_CHART_PAYMENTS_MAX: usize = 5_000;
/// Longest form value kept for redisplay (longer input is invalid anyway).
pub const CHECKOUT_FIELD_CHARS_MAX: usize = 100;
/// Longest name on the card accepted: longer than any printed card name.
pub const CHECKOUT_NAME_CHARS_MAX: usize = 100;
/// How long a second submit of one payment waits for the first to finish before giving up.
pub const CHECKOUT_CONCURRENT_SUBMIT_WAIT_MS: u64 = 15_000;
/// How often that waiting submit looks again: short against a payment's few milliseconds.
pub const CHECKOUT_CONCURRENT_SUBMIT_POLL_MS: u64 = 20;

/// Digits in a card number (ISO/IEC 7812: 12 to 19).
pub const CARD_NUMBER_DIGITS_MIN: usize = 12;
pub const CARD_NUMBER_DIGITS_MAX: usize = 19;
/// Four-digit expiry years accepted; a two-digit year `YY` means `CARD_EXPIRY_YEAR_MIN + YY`.
pub const CARD_EXPIRY_YEAR_MIN: u32 = 2000;
pub const CARD_EXPIRY_YEAR_MAX: u32 = 2099;
/// Largest percentage fee in `[pricing]`, in basis points: 10 000 bps are 100 %.
pub const PRICING_PERCENT_BPS_MAX: u32 = 10_000;
/// How long funds wait before a live settlement may pay them out (T+2).
pub const LIVE_AVAILABILITY_DAYS: i64 = 2;
/// Longest `idempotency.retention_hours`: a key kept longer than the events (SPEC §6) would
/// replay answers about objects whose events are gone.
pub const IDEMPOTENCY_RETENTION_HOURS_MAX: u32 = (EVENT_RETENTION_MS / 3_600_000) as u32;

/// Connections per node: enough concurrent transactions for PostgreSQL to batch their WAL
/// flushes; PostgreSQL's default `max_connections` is 100, so six nodes fit.
pub const POSTGRES_POOL_CONNECTIONS_MAX: usize = 16;
/// SQLite reader threads, each with its own read-only connection (readers run in parallel under
/// WAL, beside the writer); reads never run on the async worker threads, except one-row reads
/// by primary key (the key cache's version, a payment by id).
pub const SQLITE_READER_THREADS: usize = 4;
/// Read-only connections kept for the one-row reads that run on the async worker threads (one
/// per worker thread is enough; a read that finds none free opens one and closes it after).
pub const SQLITE_INLINE_READ_CONNECTIONS_MAX: usize = 8;
/// How long such a read on an async worker waits for a lock before it gives up (a reader
/// thread waits [`SQLITE_BUSY_TIMEOUT_MS`]).
pub const SQLITE_INLINE_READ_BUSY_TIMEOUT_MS: u64 = 100;
/// Keys whose lookup a server keeps between changes of the auth version; a full cache starts
/// over empty.
pub const KEY_CACHE_KEYS_MAX: usize = 10_000;
/// How long a PostgreSQL node waits before it opens its `LISTEN vinr_auth` connection again
/// after losing it (its key cache is off meanwhile).
pub const POSTGRES_LISTEN_RETRY_MS: u64 = 1_000;
/// How often that connection is asked `SELECT 1`, and how long it may take to answer before
/// it counts as lost (a socket that died silently).
pub const POSTGRES_LISTEN_HEARTBEAT_MS: u64 = 2_000;
/// Reads that may wait for a reader thread before new reads are refused (503).
pub const SQLITE_READ_QUEUE_READS_MAX: usize = 16 * 1024;
/// How long a SQLite connection waits for another process (e.g. `vinr keys create`) holding
/// the lock.
pub const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;
/// Prepared statements cached per SQLite connection: about as many as the store prepares.
pub const SQLITE_STATEMENT_CACHE_STATEMENTS: usize = 64;
/// Page cache per SQLite connection. Hot index pages stay in memory; much larger caches cost
/// more at every transaction end than they save (measured: `pcache1Truncate`).
pub const SQLITE_CACHE_SIZE_KIB: i64 = 16 * 1024;
/// Memory-mapped reads of the first part of the database file: reads there skip a copy through
/// the page cache. Mapped pages count in the process's resident memory, so the map is kept
/// small enough for SPEC §9's 100 MB after 5 million requests: 256 MiB measured VmRSS 191 MB
/// (151 MB of it the mapped file), 32 MiB 54 MB, with create, get and mixed within noise of
/// each other (BENCHMARKS.md, 2026-12-01).
pub const SQLITE_MMAP_SIZE_BYTES: i64 = 32 * 1024 * 1024;
/// How often the checkpointer copies the WAL back into the database file, so the WAL stays
/// short and reads do not scan a long one.
pub const SQLITE_CHECKPOINT_INTERVAL_MS: u64 = 250;
/// WAL pages after which the writer checkpoints between two batches (about 8 MiB at 4 KiB pages).
pub const SQLITE_WAL_AUTOCHECKPOINT_PAGES: i64 = 2000;
/// The WAL file is truncated back to this size after it has grown past it.
pub const SQLITE_JOURNAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;
/// Rows per page when the store reads all balance transactions of a filter (settlement
/// reports): bounds one statement's result while the whole set is read.
pub const BALANCE_EXPORT_PAGE_ROWS: u32 = 1000;

/// Rows a balance's running total is spread over (`balance_totals.slot`), so that concurrent
/// bookings for one merchant on PostgreSQL rarely wait for the same row lock; a balance read
/// adds up at most this many rows per currency.
pub const BALANCE_TOTAL_SLOTS: u64 = 128;

/// A webhook endpoint's `description`: a label for people, shorter than a payment's (SPEC §6
/// sets no bound).
pub const WEBHOOK_DESCRIPTION_CHARS_MAX: usize = 500;
/// Endpoint URLs longer than this (in bytes) are refused: the same bound as `returnUrl`.
pub const WEBHOOK_URL_BYTES_MAX: usize = 2048;
/// Endpoints per account and mode: bounds the fan-out (delivery rows) of every event.
pub const WEBHOOK_ENDPOINTS_PER_SCOPE_MAX: u64 = 16;
/// Bytes of a receiver's answer kept with each attempt: enough to read an error message.
pub const WEBHOOK_RESPONSE_EXCERPT_BYTES_MAX: usize = 1024;
/// Random bytes in a signing secret (the Standard Webhooks format: `whsec_` + base64; the
/// format asks for 24 to 64 bytes).
pub const WEBHOOK_SECRET_RANDOM_BYTES: usize = 32;
/// Idle keep-alive connections kept per receiver host, so a busy receiver is not reconnected
/// for every attempt.
pub const WEBHOOK_POOL_IDLE_PER_HOST_CONNECTIONS_MAX: usize = 256;
/// Deliveries leased per transaction: one transaction fills much of the in-flight window.
pub const WEBHOOK_LEASE_BATCH_DELIVERIES_MAX: usize = 512;
/// Attempts in flight on this node (the sockets are counted in the file reserve above).
pub const WEBHOOK_IN_FLIGHT_ATTEMPTS_MAX: usize = 1024;
/// Outcomes recorded per transaction: one transaction can record the whole in-flight window.
pub const WEBHOOK_RECORD_BATCH_OUTCOMES_MAX: usize = 1024;
/// A lease outlives the attempt's timeout by this much, time to record the outcome; only
/// after it may another node (or this one, after a crash) attempt the delivery again.
pub const WEBHOOK_LEASE_MARGIN_MS: i64 = 15_000;
/// How long a stopping delivery worker waits for attempts in flight to finish and be recorded.
pub const WEBHOOK_DRAIN_TIMEOUT_MS: u64 = 5_000;
/// How often the webhook queue-depth gauge is refreshed: finer than any scrape interval.
pub const WEBHOOK_GAUGE_INTERVAL_MS: u64 = 1_000;
/// How often finished deliveries and attempts older than the events' 30 days are pruned.
pub const WEBHOOK_PRUNE_INTERVAL_MS: u64 = 60_000;
/// Prune statements per pass, each of at most [`PRUNE_BATCH_ROWS_MAX`] rows per table.
pub const WEBHOOK_PRUNE_BATCHES_MAX: usize = 100;
/// The longest `faults.delayMs` of a test-mode endpoint (SPEC §12): each attempt waits this
/// long before it is sent.
pub const WEBHOOK_FAULT_DELAY_MS_MAX: u64 = 30_000;
/// The longest an `outOfOrder` endpoint's delivery is held for a later event (SPEC §12).
pub const WEBHOOK_OUT_OF_ORDER_HOLD_MS: i64 = 5_000;

/// How often the refund worker looks for pending refunds: a refund finishes within a fraction
/// of a second.
pub const REFUND_WORKER_INTERVAL_MS: u64 = 200;
/// Refunds leased per transaction: bounds how long one step holds the writer or row locks.
pub const REFUND_WORKER_BATCH_REFUNDS_MAX: usize = 100;
/// How long a leased refund is left to its worker before another may take it, at least (a
/// processor with a long timeout gets longer: [`REFUND_LEASE_PROCESSOR_TIMEOUTS`]).
pub const REFUND_LEASE_MS: i64 = 60_000;
/// How often the expiry worker looks for due payments: expiry is accurate to about a second.
pub const EXPIRY_WORKER_INTERVAL_MS: u64 = 1_000;
/// Payments per transaction: bounds how long one sweep holds the writer or row locks.
pub const EXPIRY_BATCH_PAYMENTS_MAX: usize = 100;
/// Batches per step, so a backlog is worked off over several steps without starving others.
pub const EXPIRY_BATCHES_PER_STEP_MAX: usize = 50;
/// Disputes whose deadline passed that one transaction of the expiry worker (or the test
/// clock) marks `lost`.
pub const EXPIRY_BATCH_DISPUTES_MAX: usize = 100;
/// How often the settlement worker runs due schedules and payouts.
pub const SETTLEMENT_WORKER_INTERVAL_MS: u64 = 2_000;
/// Payouts per transaction: bounds how long one step holds the writer or row locks.
pub const SETTLEMENT_PAYOUTS_PER_TRANSACTION_MAX: usize = 100;
/// How often the maintenance worker prunes expired idempotency keys and old events.
pub const MAINTENANCE_INTERVAL_MS: u64 = 60_000;
/// Batches per step: at most this many × [`PRUNE_BATCH_ROWS_MAX`] rows of each kind per minute.
pub const MAINTENANCE_BATCHES_PER_STEP_MAX: usize = 100;

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
const _: () = assert!(API_KEY_RANDOM_CHARS * 595 / 100 >= 192);
const _: () = assert!(CSRF_COOKIE_RANDOM_CHARS * 595 / 100 >= 128);
const _: () = assert!(DASHBOARD_SESSION_ID_RANDOM_CHARS * 595 / 100 >= 192);
const _: () = assert!(DASHBOARD_SESSION_TTL_MS > 0);
const _: () = assert!(DASHBOARD_TIMELINE_EVENTS_MAX >= DASHBOARD_TIMELINE_PAGE_EVENTS);
const _: () = assert!(DASHBOARD_SESSIONS_PER_KEY_MAX >= 1);
const _: () = assert!(
    DASHBOARD_LEDGER_SOURCES_MAX
        + DASHBOARD_TIMELINE_EVENTS_MAX / DASHBOARD_TIMELINE_PAGE_EVENTS
        + 8
        <= DASHBOARD_PAGE_CALLS_MAX
);
const _: () = assert!(DASHBOARD_SETTLEMENT_ROWS_MAX / 100 + 8 <= DASHBOARD_PAGE_CALLS_MAX);
const _: () = assert!(DASHBOARD_SIGN_INS_PER_ADDRESS_PER_MINUTE >= 1);
const _: () = assert!(DASHBOARD_CHART_PAYMENTS_MAX / 100 + 8 <= DASHBOARD_PAGE_CALLS_MAX);
const _: () = assert!(
    DASHBOARD_TIMELINE_EVENTS_MAX / DASHBOARD_TIMELINE_PAGE_EVENTS + 8 <= DASHBOARD_PAGE_CALLS_MAX
);
const _: () = assert!(PLATFORM_KEY_RANDOM_CHARS * 595 / 100 >= 192);
const _: () = assert!(
    PLATFORM_KEY_SECRET_CHARS_MIN <= PLATFORM_KEY_RANDOM_CHARS
        && PLATFORM_KEY_RANDOM_CHARS <= PLATFORM_KEY_SECRET_CHARS_MAX
);
const _: () = assert!(CHECKOUT_TOKEN_RANDOM_CHARS <= CHECKOUT_TOKEN_BYTES_MAX);
const _: () = assert!(
    CHECKOUT_CONCURRENT_SUBMIT_POLL_MS >= 1
        && CHECKOUT_CONCURRENT_SUBMIT_POLL_MS <= CHECKOUT_CONCURRENT_SUBMIT_WAIT_MS
);
const _: () = assert!(CARD_NUMBER_DIGITS_MIN <= CARD_NUMBER_DIGITS_MAX);
// Every two-digit year maps into the accepted four-digit years.
const _: () =
    assert!(CARD_EXPIRY_YEAR_MIN % 100 == 0 && CARD_EXPIRY_YEAR_MIN + 99 <= CARD_EXPIRY_YEAR_MAX);
const _: () = assert!(
    IDEMPOTENCY_RETENTION_HOURS_MAX >= 24
        && IDEMPOTENCY_RETENTION_MS_DEFAULT <= IDEMPOTENCY_RETENTION_HOURS_MAX as i64 * 3_600_000
);
// Six nodes' pools fit PostgreSQL's default `max_connections` of 100.
const _: () = assert!(POSTGRES_POOL_CONNECTIONS_MAX * 6 <= 100);
// The WAL is not truncated below the size at which the writer checkpoints (4 KiB pages).
const _: () = assert!(SQLITE_JOURNAL_SIZE_LIMIT_BYTES >= SQLITE_WAL_AUTOCHECKPOINT_PAGES * 4096);
const _: () = assert!(WEBHOOK_SECRET_RANDOM_BYTES >= 24 && WEBHOOK_SECRET_RANDOM_BYTES <= 64);
// A lease never takes more deliveries than can be attempted at once.
const _: () = assert!(WEBHOOK_LEASE_BATCH_DELIVERIES_MAX <= WEBHOOK_IN_FLIGHT_ATTEMPTS_MAX);
const _: () = assert!(REFUND_LEASE_MS > REFUND_WORKER_INTERVAL_MS as i64);
const _: () = assert!(WEBHOOK_OUT_OF_ORDER_HOLD_MS >= 1);

/// The furthest one `POST /v1/test_helpers/clock/advance` moves an account's test clock
/// (SPEC §10: 400 days).
pub const TEST_CLOCK_ADVANCE_MS_MAX: i64 = 400 * 24 * 60 * 60 * 1000;
/// Instants of due work one transaction of a clock move runs before it commits and the next
/// one goes on (each instant is at most a batch of payments, the settlement groups and the
/// payouts due then): the writer is never held long.
pub const TEST_CLOCK_INSTANTS_PER_TRANSACTION_MAX: usize = 64;
/// How often the clock worker catches up the accounts whose test clock runs ahead.
pub const TEST_CLOCK_WORKER_INTERVAL_MS: u64 = 1_000;
/// Accounts with a test clock ahead of real time that one pass of the clock worker visits.
pub const TEST_CLOCK_ACCOUNTS_PER_PASS_MAX: usize = 1_000;

/// The longest `latency=<ms>` fault (SPEC §12): 30 s.
pub const TEST_FAULT_LATENCY_MS_MAX: u32 = 30_000;
/// The `Retry-After` of an injected 429, in seconds.
pub const TEST_FAULT_RETRY_AFTER_S: u64 = 1;
/// Fault rules one account may hold at once (`POST /v1/test_helpers/faults`).
pub const TEST_FAULT_RULES_PER_ACCOUNT_MAX: usize = 100;
/// The largest `count` of one fault rule.
pub const TEST_FAULT_RULE_COUNT_MAX: u32 = 10_000;
/// The longest `path` of a fault rule, in characters.
pub const TEST_FAULT_RULE_PATH_CHARS_MAX: usize = 256;
/// The longest `Vinr-Test-Fault` header or rule `fault` value, in characters.
pub const TEST_FAULT_CHARS_MAX: usize = 64;
// A request delayed by the longest latency fault still finishes within the shutdown grace.
const _: () = assert!((TEST_FAULT_LATENCY_MS_MAX as u64) < HTTP_SHUTDOWN_GRACE_MS);

/// A connector's request timeout when `timeout_ms` is not given (SPEC §15), and its bounds.
pub const PROCESSOR_TIMEOUT_MS_DEFAULT: u64 = 10_000;
pub const PROCESSOR_TIMEOUT_MS_MIN: u64 = 100;
pub const PROCESSOR_TIMEOUT_MS_MAX: u64 = 120_000;
/// Consecutive processor errors after which a processor is skipped (the circuit breaker)…
pub const PROCESSOR_BREAKER_ERRORS_DEFAULT: u32 = 5;
/// …for this long.
pub const PROCESSOR_BREAKER_COOLDOWN_MS_DEFAULT: u64 = 30_000;
pub const PROCESSOR_BREAKER_COOLDOWN_MS_MAX: u64 = 3_600_000;
/// Calls a claimed payment may make to one processor (payment method, intent, confirm, and a
/// look after a failed confirm): its claim lasts this many timeouts per processor of its route,
/// plus [`PROCESSOR_CLAIM_MARGIN_MS`], before a repair may take it over.
pub const PROCESSOR_CLAIM_CALLS_PER_PROCESSOR: u64 = 5;
pub const PROCESSOR_CLAIM_MARGIN_MS: u64 = 5_000;
/// The longest answer body read from an acquirer: a longer one is a processor error.
pub const PROCESSOR_RESPONSE_BYTES_MAX: usize = 1024 * 1024;
/// A leased refund's lease: this many of its processor's timeouts (the call, and a repeat
/// that Stripe answers 409 while the first still runs), plus [`REFUND_LEASE_MARGIN_MS`],
/// and never less than [`REFUND_LEASE_MS`].
pub const REFUND_LEASE_PROCESSOR_TIMEOUTS: u64 = 3;
pub const REFUND_LEASE_MARGIN_MS: u64 = 5_000;
/// Random characters of a processor claim's owner token (base62: ~95 bits).
pub const PROCESSOR_CLAIM_OWNER_CHARS: usize = 16;
/// How often the repair worker looks for claims whose holder died, and how many per pass.
pub const PROCESSOR_REPAIR_INTERVAL_MS: u64 = 1_000;
pub const PROCESSOR_REPAIR_BATCH_PAYMENTS_MAX: usize = 20;
/// Acquirer cancels of expired payments sent per pass of that worker.
pub const PROCESSOR_CANCEL_BATCH_PAYMENTS_MAX: usize = 20;
/// Most attempts `GET /v1/payments/{id}/attempts` lists (a route has a few processors).
pub const PAYMENT_ATTEMPTS_LISTED_MAX: usize = 100;
/// Longest processor name in `[processors.<name>]`.
pub const PROCESSOR_NAME_CHARS_MAX: usize = 64;
