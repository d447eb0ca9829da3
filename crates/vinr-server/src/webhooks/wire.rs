//! Webhook records → wire JSON (the endpoint, its attempts).

use vinr_domain::Mode;
use vinr_types as wire;

use crate::render::timestamp;
use crate::store::{WebhookAttemptRecord, WebhookEndpointRecord};

/// The endpoint as every answer shows it; the secret only when `with_secret` (its creation).
pub fn endpoint(e: &WebhookEndpointRecord, with_secret: bool) -> wire::WebhookEndpoint {
    wire::WebhookEndpoint {
        id: e.id.clone(),
        object: "webhook_endpoint".into(),
        url: e.url.clone(),
        description: e.description.clone(),
        events: if e.events.is_empty() {
            vec!["*".into()]
        } else {
            e.events.clone()
        },
        status: if e.enabled { "enabled" } else { "disabled" }.into(),
        created_at: timestamp(e.created_at),
        livemode: e.scope.mode == Mode::Live,
        faults: e.faults.as_ref().map(super::faults_wire),
        secret: with_secret.then(|| e.secret.expose().clone()),
    }
}

pub fn attempt(a: &WebhookAttemptRecord) -> wire::WebhookAttempt {
    wire::WebhookAttempt {
        id: a.id.clone(),
        object: "webhook_attempt".into(),
        webhook: a.endpoint_id.clone(),
        event: a.event_id.clone(),
        event_type: a.event_type.clone(),
        attempt: a.attempt,
        status: if a.succeeded { "succeeded" } else { "failed" }.into(),
        status_code: a.status_code,
        latency_ms: a.latency_ms,
        response_excerpt: a.response_excerpt.clone(),
        error: a.error.clone(),
        next_attempt_at: a.next_attempt_at.map(timestamp),
        fault: a.fault.map(|fault| fault.as_str().to_owned()),
        request_headers: (!a.request_headers.is_empty()).then(|| a.request_headers.clone()),
        created_at: timestamp(a.created_at),
        livemode: a.scope.mode == Mode::Live,
    }
}

#[cfg(test)]
mod tests {
    use vinr_domain::{Mode, UnixMillis};

    use crate::redacted::Redacted;
    use crate::store::{Scope, WebhookEndpointRecord};

    #[test]
    fn the_secret_is_never_in_debug_output() {
        let secret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let record = WebhookEndpointRecord {
            id: "we_x".into(),
            scope: Scope {
                account_id: "acct_x".into(),
                mode: Mode::Test,
            },
            url: "https://shop.example/hooks".into(),
            description: None,
            events: Vec::new(),
            secret: Redacted::new(secret.into()),
            enabled: true,
            faults: None,
            created_at: UnixMillis(0),
        };
        let shown = super::endpoint(&record, true);
        assert_eq!(shown.secret.as_deref(), Some(secret));
        for debug in [format!("{record:?}"), format!("{shown:?}")] {
            assert!(!debug.contains("AAECAwQF"), "{debug}");
            assert!(debug.contains("redacted"), "{debug}");
        }
        assert_eq!(super::endpoint(&record, false).secret, None);
    }
}
