//! What both backends share about the webhook tables (SPEC §6): column lists, the encoding of
//! an endpoint's subscribed types, and the conversion of raw row values into records.

use vinr_domain::{Mode, UnixMillis};

use super::columns::corrupt;
use super::WebhookEndpointRecord;
use super::{DeliveryJob, EventRecord, Scope, StoreError, WebhookAttemptRecord};
use crate::redacted::Redacted;

pub const ENDPOINT_COLUMNS: &str =
    "id, account_id, mode, url, description, events, secret, status, created_at";

pub const ATTEMPT_COLUMNS: &str = "id, account_id, mode, endpoint_id, delivery_seq, event_id, \
    event_type, attempt, succeeded, status_code, latency_ms, response_excerpt, error, \
    next_attempt_at, created_at";

/// `*` for every type, else the types between commas, so that one `instr`/`position` test
/// matches a type exactly: `,payment.completed,refund.created,`.
pub fn encode_events(events: &[String]) -> String {
    if events.is_empty() {
        return "*".to_owned();
    }
    format!(",{},", events.join(","))
}

fn decode_events(text: &str) -> Vec<String> {
    if text == "*" {
        return Vec::new();
    }
    text.split(',')
        .filter(|kind| !kind.is_empty())
        .map(str::to_owned)
        .collect()
}

fn mode(value: &str) -> Result<Mode, StoreError> {
    Mode::parse(value).ok_or_else(|| corrupt("mode", value))
}

/// The columns of [`ENDPOINT_COLUMNS`], in order.
pub struct EndpointRow {
    pub id: String,
    pub account_id: String,
    pub mode: String,
    pub url: String,
    pub description: Option<String>,
    pub events: String,
    pub secret: String,
    pub status: String,
    pub created_at: i64,
}

impl EndpointRow {
    pub fn into_record(self) -> Result<WebhookEndpointRecord, StoreError> {
        let enabled = match self.status.as_str() {
            "enabled" => true,
            "disabled" => false,
            other => return Err(corrupt("webhook status", other)),
        };
        Ok(WebhookEndpointRecord {
            scope: Scope {
                mode: mode(&self.mode)?,
                account_id: self.account_id,
            },
            id: self.id,
            url: self.url,
            description: self.description,
            events: decode_events(&self.events),
            secret: Redacted::new(self.secret),
            enabled,
            created_at: UnixMillis(self.created_at),
        })
    }
}

/// The columns of [`ATTEMPT_COLUMNS`], in order.
pub struct AttemptRow {
    pub id: String,
    pub account_id: String,
    pub mode: String,
    pub endpoint_id: String,
    pub delivery_seq: Option<i64>,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub succeeded: bool,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
}

impl AttemptRow {
    pub fn into_record(self) -> Result<WebhookAttemptRecord, StoreError> {
        Ok(WebhookAttemptRecord {
            scope: Scope {
                mode: mode(&self.mode)?,
                account_id: self.account_id,
            },
            id: self.id,
            endpoint_id: self.endpoint_id,
            delivery_seq: self.delivery_seq,
            event_id: self.event_id,
            event_type: self.event_type,
            attempt: u32::try_from(self.attempt)
                .map_err(|_| corrupt("attempt", &self.attempt.to_string()))?,
            succeeded: self.succeeded,
            status_code: self
                .status_code
                .map(|code| {
                    u16::try_from(code).map_err(|_| corrupt("status code", &code.to_string()))
                })
                .transpose()?,
            latency_ms: u64::try_from(self.latency_ms).unwrap_or_default(),
            response_excerpt: self.response_excerpt,
            error: self.error,
            next_attempt_at: self.next_attempt_at.map(UnixMillis),
            created_at: UnixMillis(self.created_at),
        })
    }
}

/// The columns of a leased delivery joined with its endpoint and event, in order.
pub const JOB_COLUMNS: &str = "d.seq, d.endpoint_id, e.url, e.secret, d.attempts, d.created_at, \
    e.account_id, e.mode, ev.id, ev.type, ev.object_id, ev.data, ev.created_at";

pub struct JobRow {
    pub seq: i64,
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    pub attempts: i64,
    pub created_at: i64,
    pub account_id: String,
    pub mode: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub event_object_id: Option<String>,
    pub event_data: Option<String>,
    pub event_created_at: Option<i64>,
}

impl JobRow {
    pub fn into_job(self) -> Result<DeliveryJob, StoreError> {
        let scope = Scope {
            mode: mode(&self.mode)?,
            account_id: self.account_id,
        };
        let event = match (
            self.event_id,
            self.event_type,
            self.event_object_id,
            self.event_data,
            self.event_created_at,
        ) {
            (Some(id), Some(kind), Some(object_id), Some(data), Some(created_at)) => {
                Some(EventRecord {
                    id,
                    scope: scope.clone(),
                    kind,
                    object_id,
                    data,
                    created_at: UnixMillis(created_at),
                })
            }
            _ => None,
        };
        Ok(DeliveryJob {
            delivery_seq: self.seq,
            endpoint_id: self.endpoint_id,
            url: self.url,
            secret: Redacted::new(self.secret),
            event,
            scope,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            queued_at: UnixMillis(self.created_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribed_types_round_trip() {
        assert_eq!(encode_events(&[]), "*");
        assert!(decode_events("*").is_empty());
        let types = vec!["payment.completed".to_owned(), "refund.created".to_owned()];
        let encoded = encode_events(&types);
        assert_eq!(encoded, ",payment.completed,refund.created,");
        assert_eq!(decode_events(&encoded), types);
    }
}
