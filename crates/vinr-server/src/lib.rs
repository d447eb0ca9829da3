//! The `vinr` server: HTTP API, background workers and storage. Modules in the order a request
//! travels:
//!
//! 1. [`http`] — the connection loop (header and idle timeouts, a cap below the file limit),
//!    router and layers (request id, metrics, panic catcher), thin handlers, body parsing and
//!    the one error type.
//! 2. [`auth`] — API key → account + mode + scopes (a platform key on the accounts routes);
//!    rate limits.
//! 3. [`idempotency`] — Fresh | Replay | Mismatch | InUse, before any work.
//! 4. [`flows`] — create, pay, capture, cancel: one transaction each, pure domain rules inside.
//! 5. [`store`] — the `Tx`/`Reader` traits and the SQLite backend (group commit).
//! 6. [`outbox`] — events written in the flow's transaction, with their webhook deliveries.
//! 7. [`workers`] — background work at its own pace (expiry, refunds, pruning, webhook
//!    delivery, metrics upkeep).
//!
//! Beside the API: [`checkout`] — the hosted checkout pages (public, reached by a payment's
//! unguessable checkout token), which charge cards through [`charge`] as the test helper does.
//! And the dashboard ([`http::dashboard`]): the merchant's console, behind a session opened
//! with an API key, which reads and acts only through the API's own router.
//!
//! Webhooks: [`webhooks`] holds the pure parts (event types, URL rules, Standard Webhooks
//! signatures, the retry schedule, SSRF address rules) and the signed sender.
//!
//! Card processing: [`processor`] (the card processor trait and the sandbox simulator) and
//! [`connectors`] (acquirer connectors such as `stripe`, routing, failover, circuit breakers,
//! the claim before any acquirer call and the repair after a crash; SPEC §15).
//!
//! Around them: [`render`]
//! (domain → wire JSON), [`config`], [`clock`], [`server`] (start and stop), [`cli`].

pub mod auth;
pub mod charge;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connectors;
pub mod flows;
pub mod http;
pub mod idempotency;
pub mod inflight;
pub mod keys;
pub mod outbox;
pub mod processor;
pub mod redacted;
pub mod render;
pub mod server;
pub mod state;
pub mod store;
pub mod webhooks;
pub mod workers;
