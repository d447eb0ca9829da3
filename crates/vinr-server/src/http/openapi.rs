//! The OpenAPI 3.1 document, generated from the handlers' annotations and the wire types
//! (utoipa); its paths are those of the route table ([`routes::table`]). A committed copy (`openapi.json` at the repository root) is compared with this
//! in the test suite, so the published contract cannot drift from the code.

use std::sync::OnceLock;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use vinr_types as wire;

use crate::http::routes;

mod contract;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "VINR API",
        description = "Payments: create, pay (hosted checkout), capture, cancel; refunds; the \
            balance and its ledger transactions; settlements; events. \
            Amounts are integers in minor units. Every error has the body `{\"error\": {type, \
            code, message, param, request_id}}`; every response carries `X-Request-Id`. \
            In test mode any keyed request may carry `Vinr-Test-Fault` (`latency=<ms>`, \
            `status=<429|500|502|503>`, `commit-then-500`, `commit-then-drop`) to fail on \
            purpose (see `/v1/test_helpers/faults`); it is not listed per operation so that \
            fuzzers leave it out.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    servers((url = "/", description = "This server")),
    components(schemas(
        wire::ErrorBody,
        wire::ErrorDetail,
        wire::CreatePaymentRequest,
        wire::CapturePaymentRequest,
        wire::CancelPaymentRequest,
        wire::TestPayRequest,
        wire::TestAuthenticateRequest,
        wire::ChallengeOutcome,
        wire::Payment,
        wire::PaymentMethod,
        wire::PaymentList,
        wire::PaymentAttempt,
        wire::PaymentAttemptList,
        wire::CreateRefundRequest,
        wire::Refund,
        wire::RefundList,
        wire::Dispute,
        wire::DisputeEvidence,
        wire::DisputeList,
        wire::UpdateDisputeRequest,
        wire::CloseDisputeRequest,
        wire::TestDisputeRequest,
        wire::DisputeOutcome,
        wire::ResolveDisputeRequest,
        wire::Balance,
        wire::BalanceAmount,
        wire::BalanceTransaction,
        wire::BalanceTransactionList,
        wire::Settlement,
        wire::SettlementList,
        wire::Event,
        wire::EventData,
        wire::EventList,
        wire::Health,
        wire::CreateWebhookRequest,
        wire::UpdateWebhookRequest,
        wire::WebhookFaults,
        wire::WebhookEndpoint,
        wire::WebhookEndpointList,
        wire::WebhookAttempt,
        wire::WebhookAttemptList,
        wire::ResendEventRequest,
        wire::EventResend,
        wire::DeletedWebhookEndpoint,
        wire::TestWebhookRequest,
        wire::RunSettlementsRequest,
        wire::CreateAccountRequest,
        wire::UpdateAccountRequest,
        wire::Account,
        wire::AccountList,
        wire::DeletedAccount,
        wire::OwnAccount,
        wire::ResetRequest,
        wire::Reset,
        wire::ResetDeleted,
        wire::TestClock,
        wire::AdvanceClockRequest,
        wire::CreateFaultRuleRequest,
        wire::FaultRule,
        wire::FaultRuleList,
        wire::FaultRulesCleared,
    )),
    modifiers(&Security),
    tags(
        (name = "payments", description = "Create, read, capture and cancel payments"),
        (name = "test helpers", description = "Test mode only: act as the shopper, run settlements, reset an account's test data, move its test clock, inject faults"),
        (name = "refunds", description = "Refunds of completed payments, settled asynchronously"),
        (name = "disputes", description = "Chargebacks: the shopper's bank takes a completed payment back; respond with evidence or accept"),
        (name = "balance", description = "The ledger: balance per currency and the balance transactions behind it"),
        (name = "settlements", description = "Payouts: due balance transactions gathered per account, mode and currency"),
        (name = "events", description = "Every state change, kept 30 days"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "webhooks", description = "Endpoints that receive every event, signed (Standard Webhooks)"),
        (name = "accounts", description = "Merchant accounts, managed with a platform key (`plk_…`); `GET /v1/account` answers an account key's own"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer sk_test_…` (the `/v1/accounts` routes: a \
                         platform key, `Bearer plk_…`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "The same API key in the `X-Api-Key` header",
            ))),
        );
    }
}

/// The paths of the route table and the schemas they refer to, added as `paths(...)` of
/// `#[derive(OpenApi)]` would add them.
fn with_routes(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let routes::Table { paths, schemas, .. } = routes::table();
    openapi.paths = paths.build();
    openapi
        .components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(schemas);
    openapi
}

/// The document as pretty JSON, built once: utoipa's output with the contract of
/// [`contract::apply`] on top.
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut json = serde_json::to_value(with_routes(ApiDoc::openapi()))
            .and_then(|mut document| {
                contract::apply(&mut document);
                serde_json::to_string_pretty(&document)
            })
            .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
        json.push('\n');
        json
    })
}
