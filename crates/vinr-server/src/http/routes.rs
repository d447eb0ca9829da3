//! The route table: every documented route once, with its handler, its OpenAPI operation (the
//! method and path come from the handler's `#[utoipa::path]`) and who may call it. The router
//! ([`super::router`]), the scope check ([`attach_scope`] hands the matched route's scope to
//! the authentication middleware) and the OpenAPI paths ([`super::openapi`]) are all derived from [`table`].

use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{on, MethodFilter};
use axum::Router;
use utoipa::openapi::path::{HttpMethod, PathItem, PathsBuilder};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

use crate::auth::{PlatformRoute, RequiredScope};
use crate::http::{
    accounts, balance, clock, disputes, events, faults, ops, payments, refunds, settlements,
    webhooks,
};
use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No API key.
    Public,
    /// An API key that grants this scope (`…:write` grants `…:read`, a secret key all).
    Scope(&'static str),
    /// Any account's API key, restricted ones included.
    AnyKey,
    /// A platform key (`plk_…`): the routes that manage accounts.
    Platform,
}

use Access::{AnyKey, Platform, Public, Scope};

/// The table in a shape each consumer takes its part of.
pub struct Table {
    /// The routes anyone may call.
    pub public: Router<AppState>,
    /// The routes that need an API key (the caller adds the authentication layer).
    pub keyed: Router<AppState>,
    /// The OpenAPI paths, in table order.
    pub paths: PathsBuilder,
    /// The schemas the operations refer to.
    pub schemas: Vec<(String, RefOr<Schema>)>,
    /// Method, path and access of every route.
    pub access: Vec<(Method, String, Access)>,
}

/// Every route. The order is the order of the OpenAPI document's paths.
pub fn table() -> Table {
    Table::default()
        .route(
            payments::__path_create,
            payments::create,
            Scope("payments:write"),
        )
        .route(
            payments::__path_list,
            payments::list,
            Scope("payments:read"),
        )
        .route(
            payments::__path_retrieve,
            payments::retrieve,
            Scope("payments:read"),
        )
        .route(
            payments::__path_attempts,
            payments::attempts,
            Scope("payments:read"),
        )
        .route(
            payments::__path_capture,
            payments::capture,
            Scope("payments:write"),
        )
        .route(
            payments::__path_cancel,
            payments::cancel,
            Scope("payments:write"),
        )
        .route(
            payments::__path_test_pay,
            payments::test_pay,
            Scope("payments:write"),
        )
        .route(
            payments::__path_test_authenticate,
            payments::test_authenticate,
            Scope("payments:write"),
        )
        .route(
            refunds::__path_create,
            refunds::create,
            Scope("refunds:write"),
        )
        .route(refunds::__path_list, refunds::list, Scope("refunds:read"))
        .route(
            refunds::__path_retrieve,
            refunds::retrieve,
            Scope("refunds:read"),
        )
        // Disputes (SPEC §11)
        .route(
            disputes::__path_list,
            disputes::list,
            Scope("disputes:read"),
        )
        .route(
            disputes::__path_retrieve,
            disputes::retrieve,
            Scope("disputes:read"),
        )
        .route(
            disputes::__path_update,
            disputes::update,
            Scope("disputes:write"),
        )
        .route(
            disputes::__path_close,
            disputes::close,
            Scope("disputes:write"),
        )
        .route(
            disputes::__path_test_open,
            disputes::test_open,
            Scope("disputes:write"),
        )
        .route(
            disputes::__path_test_resolve,
            disputes::test_resolve,
            Scope("disputes:write"),
        )
        .route(
            balance::__path_retrieve,
            balance::retrieve,
            Scope("balance:read"),
        )
        .route(
            balance::__path_list_transactions,
            balance::list_transactions,
            Scope("balance:read"),
        )
        .route(
            balance::__path_retrieve_transaction,
            balance::retrieve_transaction,
            Scope("balance:read"),
        )
        .route(
            settlements::__path_list,
            settlements::list,
            Scope("settlements:read"),
        )
        .route(
            settlements::__path_retrieve,
            settlements::retrieve,
            Scope("settlements:read"),
        )
        .route(
            settlements::__path_transactions,
            settlements::transactions,
            Scope("settlements:read"),
        )
        .route(
            settlements::__path_test_run,
            settlements::test_run,
            Scope("payments:write"),
        )
        .route(
            clock::__path_retrieve,
            clock::retrieve,
            Scope("payments:read"),
        )
        .route(
            clock::__path_advance,
            clock::advance,
            Scope("payments:write"),
        )
        // Faults on purpose (SPEC §12)
        .route(
            faults::__path_create,
            faults::create,
            Scope("payments:write"),
        )
        .route(faults::__path_list, faults::list, Scope("payments:read"))
        .route(faults::__path_clear, faults::clear, Scope("payments:write"))
        .route(events::__path_list, events::list, Scope("events:read"))
        .route(
            events::__path_retrieve,
            events::retrieve,
            Scope("events:read"),
        )
        .route(ops::__path_healthz, ops::healthz, Public)
        .route(ops::__path_readyz, ops::readyz, Public)
        .route(ops::__path_metrics, ops::metrics, Public)
        .route(ops::__path_openapi, ops::openapi, Public)
        // Webhooks (SPEC §6)
        .route(
            webhooks::__path_create,
            webhooks::create,
            Scope("webhooks:write"),
        )
        .route(
            webhooks::__path_list,
            webhooks::list,
            Scope("webhooks:read"),
        )
        .route(
            webhooks::__path_retrieve,
            webhooks::retrieve,
            Scope("webhooks:read"),
        )
        .route(
            webhooks::__path_update,
            webhooks::update,
            Scope("webhooks:write"),
        )
        .route(
            webhooks::__path_delete,
            webhooks::delete,
            Scope("webhooks:write"),
        )
        .route(
            webhooks::__path_deliveries,
            webhooks::deliveries,
            Scope("webhooks:read"),
        )
        .route(
            webhooks::__path_test,
            webhooks::test,
            Scope("webhooks:write"),
        )
        // Resending an event queues webhook deliveries.
        .route(
            webhooks::__path_resend,
            webhooks::resend,
            Scope("webhooks:write"),
        )
        // Accounts (SPEC §10): managed with a platform key; an account reads its own.
        .route(accounts::__path_create, accounts::create, Platform)
        .route(accounts::__path_list, accounts::list, Platform)
        .route(accounts::__path_retrieve, accounts::retrieve, Platform)
        .route(accounts::__path_update, accounts::update, Platform)
        .route(accounts::__path_delete, accounts::delete, Platform)
        .route(accounts::__path_own, accounts::own, AnyKey)
        // Reset (SPEC §10): an account's test-mode data, like the other test helpers.
        .route(
            accounts::__path_reset,
            accounts::reset,
            Scope("payments:write"),
        )
}

/// Middleware on the keyed routes, outside authentication: attaches the [`RequiredScope`] of
/// the matched route and method, which [`super::auth::require_key`] checks the key against,
/// or [`PlatformRoute`] for a route that takes a platform key.
pub async fn attach_scope(mut request: Request, next: Next) -> Response {
    let access = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| access_of(request.method(), path.as_str()));
    if access == Some(Platform) {
        request.extensions_mut().insert(PlatformRoute);
    }
    let needed = match access {
        Some(Scope(scope)) => Some(scope),
        _ => None,
    };
    request.extensions_mut().insert(RequiredScope(needed));
    next.run(request).await
}

/// The scope a request to the route `path` (as matched, e.g. `/v1/payments/{id}`) needs;
/// `None` for a route any key (or no key) may call or a method the route does not have.
#[cfg(test)]
fn required_scope(method: &Method, path: &str) -> Option<&'static str> {
    match access_of(method, path) {
        Some(Scope(scope)) => Some(scope),
        _ => None,
    }
}

/// Who may call the route `path` (as matched) with `method`; `None` for a method the route
/// does not have (answered 405).
fn access_of(method: &Method, path: &str) -> Option<Access> {
    static ACCESS: OnceLock<Vec<(Method, String, Access)>> = OnceLock::new();
    // axum answers HEAD with the GET handler.
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    ACCESS
        .get_or_init(|| table().access)
        .iter()
        .find(|(m, p, _)| m == method && p == path)
        .map(|(_, _, access)| *access)
}

impl Default for Table {
    fn default() -> Self {
        Self {
            public: Router::new(),
            keyed: Router::new(),
            paths: PathsBuilder::new(),
            schemas: Vec::new(),
            access: Vec::new(),
        }
    }
}

impl Table {
    /// One route: `doc` is the struct `#[utoipa::path]` generates next to `handler`.
    fn route<D, H, T>(mut self, _doc: D, handler: H, access: Access) -> Self
    where
        D: utoipa::Path + utoipa::__dev::Tags<'static> + utoipa::__dev::SchemaReferences,
        H: Handler<T, AppState>,
        T: 'static,
    {
        let path = D::path();
        // As `#[derive(OpenApi)]`'s `paths(...)` builds an operation and merges it into the
        // path's item.
        let mut operation = D::operation();
        operation
            .tags
            .get_or_insert_with(Vec::new)
            .extend(D::tags().iter().map(ToString::to_string));
        D::schemas(&mut self.schemas);
        for method in D::methods() {
            let (filter, http) = filter_of(&method);
            self.paths = self
                .paths
                .path(path.clone(), PathItem::new(method, operation.clone()));
            self.access.push((http, path.clone(), access));
            let router = match access {
                Public => &mut self.public,
                Scope(_) | AnyKey | Platform => &mut self.keyed,
            };
            *router = std::mem::take(router).route(&path, on(filter, handler.clone()));
        }
        self
    }
}

fn filter_of(method: &HttpMethod) -> (MethodFilter, Method) {
    match method {
        HttpMethod::Get => (MethodFilter::GET, Method::GET),
        HttpMethod::Post => (MethodFilter::POST, Method::POST),
        HttpMethod::Put => (MethodFilter::PUT, Method::PUT),
        HttpMethod::Delete => (MethodFilter::DELETE, Method::DELETE),
        HttpMethod::Options => (MethodFilter::OPTIONS, Method::OPTIONS),
        HttpMethod::Head => (MethodFilter::HEAD, Method::HEAD),
        HttpMethod::Patch => (MethodFilter::PATCH, Method::PATCH),
        HttpMethod::Trace => (MethodFilter::TRACE, Method::TRACE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_by_route() {
        let cases = [
            (Method::GET, "/v1/payments/{id}", Some("payments:read")),
            (Method::HEAD, "/v1/payments/{id}", Some("payments:read")),
            (Method::POST, "/v1/payments", Some("payments:write")),
            (Method::GET, "/v1/payments", Some("payments:read")),
            (
                Method::POST,
                "/v1/test_helpers/payments/{id}/pay",
                Some("payments:write"),
            ),
            (
                Method::POST,
                "/v1/test_helpers/settlements/run",
                Some("payments:write"),
            ),
            (
                Method::POST,
                "/v1/test_helpers/reset",
                Some("payments:write"),
            ),
            (Method::GET, "/v1/events", Some("events:read")),
            (Method::GET, "/v1/disputes/{id}", Some("disputes:read")),
            (
                Method::POST,
                "/v1/disputes/{id}/close",
                Some("disputes:write"),
            ),
            (
                Method::POST,
                "/v1/test_helpers/payments/{id}/dispute",
                Some("disputes:write"),
            ),
            (
                Method::POST,
                "/v1/events/{id}/resend",
                Some("webhooks:write"),
            ),
            (
                Method::POST,
                "/v1/webhooks/{id}/test",
                Some("webhooks:write"),
            ),
            (Method::DELETE, "/v1/webhooks/{id}", Some("webhooks:write")),
            (
                Method::GET,
                "/v1/balance_transactions/{id}",
                Some("balance:read"),
            ),
            (
                Method::GET,
                "/v1/settlements/{id}/transactions",
                Some("settlements:read"),
            ),
            (Method::GET, "/v1/account", None),
            (Method::GET, "/healthz", None),
            (Method::GET, "/v1/openapi.json", None),
        ];
        for (method, path, scope) in cases {
            assert_eq!(required_scope(&method, path), scope, "{method} {path}");
        }
        for (method, path) in [
            (Method::POST, "/v1/accounts"),
            (Method::HEAD, "/v1/accounts"),
            (Method::DELETE, "/v1/accounts/{id}"),
        ] {
            assert_eq!(access_of(&method, path), Some(Platform), "{method} {path}");
        }
        assert_eq!(access_of(&Method::GET, "/v1/account"), Some(AnyKey));
    }

    #[test]
    fn every_keyed_route_has_a_declared_scope() {
        let table = table();
        for (method, path, access) in &table.access {
            assert_eq!(
                path.starts_with("/v1/") && path != "/v1/openapi.json",
                matches!(access, Scope(_) | AnyKey | Platform),
                "{method} {path}"
            );
            assert_eq!(
                path.starts_with("/v1/accounts"),
                *access == Platform,
                "{method} {path}"
            );
            if let Scope(scope) = access {
                assert!(
                    crate::auth::SCOPES.contains(scope),
                    "{method} {path}: {scope}"
                );
            }
        }
    }
}
