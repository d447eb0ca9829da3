//! The `stripe` connector (SPEC §15): the PaymentIntents API over reqwest, form-encoded as
//! Stripe takes it. A PaymentMethod is made from the card, then a PaymentIntent with the
//! payment's `capture_method` (this is [`Processor::prepare`]: its `pi_…` is recorded before
//! any money can move), then the intent is confirmed ([`Processor::authorize`]). Every call
//! carries an `Idempotency-Key` derived from our own ids and the payment's claim attempt
//! (`vinr_<payment>_a<attempt>_<processor>_<step>`, `vinr_<refund>`): a retried call of one
//! attempt reuses its key (Stripe answers it once), and a later attempt (another card, after
//! a failover or a processor error) gets new keys instead of Stripe's replay of the old answer.
//!
//! A 402 is a decline, its `decline_code` (or `code`) mapped to our `failureCode`; anything
//! else that is not a 2xx with a JSON object of the expected shape is a processor error.
//! The secret key is sent as a bearer token and held [`Redacted`].

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use vinr_domain::limits::PROCESSOR_RESPONSE_BYTES_MAX;
use vinr_domain::{CaptureMethod, Currency, FailureCode, Payment, Refund};

use super::config::ProcessorSettings;
use crate::processor::{
    Authorization, CardInput, Prepared, Processor, ProcessorError, ProcessorErrorKind as Kind,
    ProcessorFuture, RefundAnswer, Retrieved,
};
use crate::redacted::Redacted;

#[derive(Debug)]
pub struct StripeConnector {
    name: String,
    api_base: String,
    secret_key: Redacted<String>,
    client: reqwest::Client,
    /// `<public_url>/checkout/`, when the confirm carries a `return_url` (SPEC §15).
    return_base: Option<String>,
}

/// A Stripe answer: the object, or a 402 decline with its codes.
enum Answer {
    Object(Value),
    Declined {
        code: FailureCode,
        /// The intent the decline belongs to, when the error names one.
        intent: Option<Value>,
    },
}

/// Our failure code for Stripe's `decline_code` / `code`.
pub fn failure_code(decline_code: Option<&str>, code: Option<&str>) -> FailureCode {
    for value in [decline_code, code].into_iter().flatten() {
        match value {
            "insufficient_funds" => return FailureCode::InsufficientFunds,
            "expired_card" => return FailureCode::ExpiredCard,
            "processing_error" => return FailureCode::ProcessingError,
            "payment_intent_authentication_failure"
            | "authentication_required"
            | "authentication_failed" => return FailureCode::AuthenticationFailed,
            _ => {}
        }
    }
    FailureCode::CardDeclined
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn bad(detail: impl Into<String>) -> ProcessorError {
    ProcessorError::new(Kind::BadAnswer, detail)
}

impl StripeConnector {
    pub fn new(settings: &ProcessorSettings, public_url: &str) -> Result<StripeConnector, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vinr/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("processors.{}: {error}", settings.name))?;
        Ok(StripeConnector {
            name: settings.name.clone(),
            api_base: settings.api_base.as_str().trim_end_matches('/').to_owned(),
            secret_key: settings.secret_key.clone(),
            client,
            return_base: settings
                .send_return_url
                .then(|| format!("{}/checkout/", public_url.trim_end_matches('/'))),
        })
    }

    /// The key of one call for a payment: the same on every retry of that call within the
    /// payment's claim attempt, another in the next attempt.
    fn key(&self, payment: &Payment, step: &str) -> String {
        idempotency_key(&payment.id, payment.processor_attempt, &self.name, step)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Answer, ProcessorError> {
        let url = format!("{}{path}", self.api_base);
        let mut request = self
            .client
            .request(method.clone(), &url)
            .bearer_auth(self.secret_key.expose());
        if method == Method::POST {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.map_err(|error| {
            let what = if error.is_timeout() {
                "timed out"
            } else if error.is_connect() {
                "cannot connect"
            } else {
                "request failed"
            };
            // reqwest's message names the URL (the base is configuration, not a secret).
            ProcessorError::new(
                Kind::Unreachable,
                format!("{method} {path}: {what}: {error}"),
            )
        })?;
        let status = response.status();
        let text = read_capped(response, PROCESSOR_RESPONSE_BYTES_MAX)
            .await
            .map_err(|error| {
                ProcessorError::new(error.kind, format!("{method} {path}: {}", error.detail))
            })?;
        let body: Option<Value> = serde_json::from_slice(&text).ok();
        let message = body
            .as_ref()
            .and_then(|b| b.get("error"))
            .and_then(|e| str_field(e, "message"))
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        match status {
            s if s.is_success() => match body {
                Some(object @ Value::Object(_)) => Ok(Answer::Object(object)),
                _ => Err(bad(format!("{method} {path}: {s} without a JSON object"))),
            },
            StatusCode::PAYMENT_REQUIRED => {
                let error = body
                    .as_ref()
                    .and_then(|b| b.get("error"))
                    .ok_or_else(|| bad(format!("{method} {path}: 402 without an error")))?;
                Ok(Answer::Declined {
                    code: failure_code(str_field(error, "decline_code"), str_field(error, "code")),
                    intent: error.get("payment_intent").cloned(),
                })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(ProcessorError::new(
                Kind::Unauthorized,
                format!("{method} {path}: {status} {message}"),
            )),
            StatusCode::CONFLICT => Err(ProcessorError::new(
                Kind::Conflict,
                format!("{method} {path}: {status} {message}"),
            )),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => Err(
                ProcessorError::new(Kind::Server, format!("{method} {path}: {s} {message}")),
            ),
            s => Err(ProcessorError::new(
                Kind::Refused,
                format!("{method} {path}: {s} {message}"),
            )),
        }
    }

    async fn object(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Value, ProcessorError> {
        match self
            .call(method.clone(), path, form, idempotency_key)
            .await?
        {
            Answer::Object(object) => Ok(object),
            Answer::Declined { .. } => Err(bad(format!("{method} {path}: an unexpected 402"))),
        }
    }

    async fn prepare_card(
        &self,
        payment: &Payment,
        card: &CardInput,
    ) -> Result<Prepared, ProcessorError> {
        let mut form = vec![
            ("type", "card".to_owned()),
            ("card[number]", card.number.digits().to_owned()),
            ("card[exp_month]", card.expiry.month.to_string()),
            ("card[exp_year]", card.expiry.year.to_string()),
        ];
        if let Some(cvc) = &card.cvc {
            form.push(("card[cvc]", cvc.expose().clone()));
        }
        let method = match self
            .call(
                Method::POST,
                "/v1/payment_methods",
                &form,
                Some(&self.key(payment, "pm")),
            )
            .await?
        {
            Answer::Object(object) => object,
            Answer::Declined { code, .. } => return Ok(Prepared::Declined { code }),
        };
        let pm = str_field(&method, "id")
            .filter(|id| id.starts_with("pm_"))
            .ok_or_else(|| bad("a payment method without a pm_ id"))?;
        let capture = match payment.capture_method {
            CaptureMethod::Automatic => "automatic",
            CaptureMethod::Manual => "manual",
        };
        let form = [
            ("amount", stripe_amount(payment.currency, payment.amount)?),
            ("currency", payment.currency.code().to_ascii_lowercase()),
            ("payment_method", pm.to_owned()),
            ("payment_method_types[]", "card".to_owned()),
            ("capture_method", capture.to_owned()),
            ("metadata[vinr_payment]", payment.id.clone()),
        ];
        let intent = self
            .object(
                Method::POST,
                "/v1/payment_intents",
                &form,
                Some(&self.key(payment, "pi")),
            )
            .await?;
        let reference = str_field(&intent, "id")
            .filter(|id| id.starts_with("pi_"))
            .ok_or_else(|| bad("a payment intent without a pi_ id"))?;
        Ok(Prepared::Ready {
            reference: reference.to_owned(),
        })
    }

    async fn intent(&self, reference: &str) -> Result<Value, ProcessorError> {
        self.object(
            Method::GET,
            &format!("/v1/payment_intents/{reference}"),
            &[],
            None,
        )
        .await
    }
}

/// An answer's body, at most `cap` bytes: a longer one is a processor error (never read
/// whole into memory).
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, ProcessorError> {
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Err(bad(format!("an answer longer than {cap} bytes")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| {
        ProcessorError::new(Kind::Unreachable, format!("reading the answer: {error}"))
    })? {
        if body.len() + chunk.len() > cap {
            return Err(bad(format!("an answer longer than {cap} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `Idempotency-Key` of call `step` of `attempt` of a payment to processor `name`. The
/// keys of attempt 0 (payments claimed before attempts were counted) keep their old form, so
/// a repair of such a claim asks with the keys that were sent.
fn idempotency_key(payment_id: &str, attempt: u32, name: &str, step: &str) -> String {
    if attempt == 0 {
        format!("vinr_{payment_id}_{name}_{step}")
    } else {
        format!("vinr_{payment_id}_a{attempt}_{name}_{step}")
    }
}

/// What an intent's status says, or `None` when nothing was authorized (and nothing will
/// be without another confirm).
fn decided(intent: &Value, reference: &str) -> Result<Option<Authorization>, ProcessorError> {
    let reference = reference.to_owned();
    let status = str_field(intent, "status").ok_or_else(|| bad("an intent without a status"))?;
    Ok(match status {
        "succeeded" | "requires_capture" => Some(Authorization::Approved { reference }),
        "requires_action" => Some(Authorization::ChallengeRequired {
            reference,
            redirect_url: intent
                .get("next_action")
                .and_then(|a| a.get("redirect_to_url"))
                .and_then(|r| str_field(r, "url"))
                .and_then(bank_page),
        }),
        "requires_payment_method" => match intent.get("last_payment_error") {
            Some(error) if error.is_object() => Some(Authorization::Declined {
                code: failure_code(str_field(error, "decline_code"), str_field(error, "code")),
                reference,
            }),
            _ => None,
        },
        "requires_confirmation" | "canceled" => None,
        other => return Err(bad(format!("intent status `{other}`"))),
    })
}

/// The bank's 3-D Secure page the shopper is sent to: only an `https` URL with a host (as
/// the URL library writes it, so it is a valid `Location`); anything else is not followed
/// (the checkout's challenge page stays, and the payment expires unless the acquirer decides).
fn bank_page(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    (parsed.scheme() == "https" && parsed.host().is_some()).then(|| parsed.to_string())
}

impl Processor for StripeConnector {
    fn remote(&self) -> bool {
        true
    }

    fn prepare<'a>(
        &'a self,
        payment: &'a Payment,
        card: &'a CardInput,
    ) -> ProcessorFuture<'a, Result<Prepared, ProcessorError>> {
        Box::pin(self.prepare_card(payment, card))
    }

    fn authorize<'a>(
        &'a self,
        payment: &'a Payment,
        reference: &'a str,
    ) -> ProcessorFuture<'a, Result<Authorization, ProcessorError>> {
        Box::pin(async move {
            let path = format!("/v1/payment_intents/{reference}/confirm");
            // Where a 3-D Secure redirect brings the shopper back: our checkout's return
            // page, which asks the intent what the bank decided.
            let form: Vec<(&str, String)> = self
                .return_base
                .iter()
                .map(|base| {
                    let url = format!("{base}{}/return", payment.checkout_token);
                    ("return_url", url)
                })
                .collect();
            match self
                .call(
                    Method::POST,
                    &path,
                    &form,
                    Some(&self.key(payment, "confirm")),
                )
                .await?
            {
                Answer::Object(intent) => decided(&intent, reference)?
                    .ok_or_else(|| bad("a confirmed intent that is not authorized")),
                Answer::Declined { code, intent } => {
                    // A decline of another intent than ours is not an answer about ours.
                    if let Some(id) = intent.as_ref().and_then(|i| str_field(i, "id")) {
                        if id != reference {
                            return Err(bad("a decline naming another intent"));
                        }
                    }
                    Ok(Authorization::Declined {
                        code,
                        reference: reference.to_owned(),
                    })
                }
            }
        })
    }

    fn complete_challenge<'a>(
        &'a self,
        _payment: &'a Payment,
        reference: &'a str,
        _approved: bool,
    ) -> ProcessorFuture<'a, Result<Authorization, ProcessorError>> {
        // The shopper authenticated with the bank, not on our page: the intent says how.
        Box::pin(async move {
            let intent = self.intent(reference).await?;
            decided(&intent, reference)?.ok_or_else(|| bad("an intent neither paid nor declined"))
        })
    }

    fn capture<'a>(
        &'a self,
        payment: &'a Payment,
        reference: &'a str,
        amount: u64,
    ) -> ProcessorFuture<'a, Result<(), ProcessorError>> {
        Box::pin(async move {
            let path = format!("/v1/payment_intents/{reference}/capture");
            let form = [(
                "amount_to_capture",
                stripe_amount(payment.currency, amount)?,
            )];
            self.object(
                Method::POST,
                &path,
                &form,
                Some(&self.key(payment, "capture")),
            )
            .await
            .map(drop)
        })
    }

    fn cancel<'a>(
        &'a self,
        payment: &'a Payment,
        reference: &'a str,
    ) -> ProcessorFuture<'a, Result<(), ProcessorError>> {
        Box::pin(async move {
            let path = format!("/v1/payment_intents/{reference}/cancel");
            self.object(Method::POST, &path, &[], Some(&self.key(payment, "cancel")))
                .await
                .map(drop)
        })
    }

    fn refund<'a>(
        &'a self,
        payment_reference: Option<&'a str>,
        refund: &'a Refund,
    ) -> ProcessorFuture<'a, Result<RefundAnswer, ProcessorError>> {
        Box::pin(async move {
            let Some(reference) = payment_reference else {
                return Ok(Err("processor_reference_missing".to_owned()));
            };
            let form = [
                ("payment_intent", reference.to_owned()),
                ("amount", stripe_amount(refund.currency, refund.amount)?),
                ("metadata[vinr_refund]", refund.id.clone()),
            ];
            let key = format!("vinr_{}", refund.id);
            match self
                .call(Method::POST, "/v1/refunds", &form, Some(&key))
                .await
            {
                Ok(Answer::Object(object)) => match str_field(&object, "status") {
                    Some("succeeded" | "pending") => Ok(Ok(())),
                    Some("failed" | "canceled") => Ok(Err("declined".to_owned())),
                    other => Err(bad(format!("refund status {other:?}"))),
                },
                Ok(Answer::Declined { .. }) => Ok(Err("declined".to_owned())),
                // Stripe refused this refund itself (e.g. more than is left): final. A 409 (the
                // same key still running, after a lease ran out) is not: asked again later.
                Err(error) if error.kind == Kind::Refused => Ok(Err("declined".to_owned())),
                Err(error) => Err(error),
            }
        })
    }

    fn retrieve<'a>(
        &'a self,
        _payment: &'a Payment,
        reference: &'a str,
    ) -> ProcessorFuture<'a, Result<Retrieved, ProcessorError>> {
        Box::pin(async move {
            let intent = self.intent(reference).await?;
            if str_field(&intent, "status") == Some("canceled") {
                return Ok(Retrieved::Cancelled);
            }
            Ok(match decided(&intent, reference)? {
                Some(answer) => Retrieved::Decided(answer),
                None => Retrieved::NotAuthorized,
            })
        })
    }
}

/// An amount in our minor units as Stripe's API takes it. Stripe keeps two of the currencies
/// apart from ISO 4217: ISK (zero-decimal for us and for ISO) is sent as if it had two decimals
/// (5 ISK = `500`), and a three-decimal currency (BHD, JOD, KWD, OMR, TND) must end in 0. An
/// amount Stripe cannot take is refused here, before any call.
fn stripe_amount(currency: Currency, minor: u64) -> Result<String, ProcessorError> {
    if currency.code() == "ISK" {
        return minor
            .checked_mul(100)
            .map(|amount| amount.to_string())
            .ok_or_else(|| ProcessorError::new(Kind::Refused, "amount too large"));
    }
    if currency.minor_digits() == 3 && minor % 10 != 0 {
        return Err(ProcessorError::new(
            Kind::Refused,
            format!(
                "Stripe takes {} amounts in multiples of 10 minor units",
                currency.code()
            ),
        ));
    }
    Ok(minor.to_string())
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_https_bank_pages_are_followed() {
        use super::bank_page;
        assert_eq!(
            bank_page("https://bank.example/acs/1?x=1").as_deref(),
            Some("https://bank.example/acs/1?x=1")
        );
        for refused in [
            "http://bank.example/acs",
            "javascript:alert(1)",
            "//bank.example/acs",
            "not a url",
            "data:text/html,hi",
        ] {
            assert_eq!(bank_page(refused), None, "{refused}");
        }
    }

    #[test]
    fn amounts_as_stripe_takes_them() {
        let of = |code: &str, minor: u64| {
            stripe_amount(Currency::parse(code).expect("a currency"), minor).ok()
        };
        assert_eq!(of("EUR", 1234).as_deref(), Some("1234"));
        assert_eq!(of("JPY", 1500).as_deref(), Some("1500"));
        assert_eq!(of("ISK", 5).as_deref(), Some("500"));
        assert_eq!(of("KWD", 1230).as_deref(), Some("1230"));
        assert_eq!(of("KWD", 1234), None);
    }
    use super::*;

    #[test]
    fn keys_are_per_attempt() {
        assert_eq!(
            idempotency_key("pay_1", 0, "stripe_eu", "pi"),
            "vinr_pay_1_stripe_eu_pi"
        );
        assert_eq!(
            idempotency_key("pay_1", 1, "stripe_eu", "pi"),
            "vinr_pay_1_a1_stripe_eu_pi"
        );
        assert_ne!(
            idempotency_key("pay_1", 1, "stripe_eu", "confirm"),
            idempotency_key("pay_1", 2, "stripe_eu", "confirm")
        );
    }

    #[test]
    fn decline_codes_map_to_failure_codes() {
        assert_eq!(
            failure_code(Some("insufficient_funds"), Some("card_declined")),
            FailureCode::InsufficientFunds
        );
        assert_eq!(
            failure_code(None, Some("expired_card")),
            FailureCode::ExpiredCard
        );
        assert_eq!(
            failure_code(Some("generic_decline"), Some("card_declined")),
            FailureCode::CardDeclined
        );
        assert_eq!(
            failure_code(None, Some("payment_intent_authentication_failure")),
            FailureCode::AuthenticationFailed
        );
    }

    #[test]
    fn intent_statuses() {
        let intent = |status: &str| serde_json::json!({"id": "pi_1", "status": status});
        assert!(matches!(
            decided(&intent("succeeded"), "pi_1"),
            Ok(Some(Authorization::Approved { .. }))
        ));
        assert!(matches!(
            decided(&intent("requires_confirmation"), "pi_1"),
            Ok(None)
        ));
        assert!(decided(&intent("weird"), "pi_1").is_err());
        let declined = serde_json::json!({"status": "requires_payment_method",
            "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}});
        assert_eq!(
            decided(&declined, "pi_1").expect("an answer"),
            Some(Authorization::Declined {
                code: FailureCode::InsufficientFunds,
                reference: "pi_1".into()
            })
        );
    }
}
