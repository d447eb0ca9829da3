//! What the server enforces, stated in the document, so that client generators and API fuzzers
//! (Schemathesis in CI) send what it accepts and expect what it answers: unique operation ids,
//! the bounds and character rules of every parameter and body field, every status a route can
//! answer, and links from each create (or list) to what can be done with the ids it returns.
//!
//! utoipa's attributes take only literals, so the bounds are applied here to the generated
//! document from the same constants and parsers the handlers use (`vinr_domain::limits`, the
//! card and webhook rules) instead of being copied into attributes: one place for each limit.

use serde_json::{json, Map, Value};
use vinr_domain::dispute::{DisputeReason, DisputeStatus};
use vinr_domain::ledger::BalanceType;
use vinr_domain::limits::{
    ACCOUNT_NAME_LEN_MAX, AMOUNT_MINOR_UNITS_MAX, AMOUNT_MINOR_UNITS_MIN, CARD_EXPIRY_YEAR_MAX,
    CARD_EXPIRY_YEAR_MIN, CARD_NUMBER_DIGITS_MAX, CARD_NUMBER_DIGITS_MIN,
    DISPUTE_EVIDENCE_CHARS_MAX, IDEMPOTENCY_KEY_LEN_MAX, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX,
    METADATA_KEYS_MAX, METADATA_KEY_LEN_MAX, METADATA_VALUE_LEN_MAX, PAYMENT_DESCRIPTION_CHARS_MAX,
    RETURN_URL_LEN_MAX, TEST_CLOCK_ADVANCE_MS_MAX, TEST_FAULT_RULE_COUNT_MAX,
    TEST_FAULT_RULE_PATH_CHARS_MAX, WEBHOOK_DESCRIPTION_CHARS_MAX, WEBHOOK_FAULT_DELAY_MS_MAX,
    WEBHOOK_URL_BYTES_MAX,
};
use vinr_domain::settlement::SettlementStatus;
use vinr_domain::{Currency, PaymentStatus, RefundReason};

use crate::webhooks::EVENT_TYPES;

/// Free text (descriptions, metadata values): no C0 control character except tab, line feed
/// and carriage return, and no DEL (SPEC §2, `vinr_domain::text`). A regular expression, hence the escaped backslashes.
const FREE_TEXT: &str = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$";
/// Ids, keys, cursors and URLs: no C0 control character at all, nor DEL (SPEC §2).
const NO_CONTROL: &str = "^[^\\u0000-\\u001f\\u007f]*$";
/// The `Idempotency-Key` header: visible ASCII, inner spaces allowed (HTTP trims the ends).
const HEADER_KEY: &str = "^[!-~]([ -~]*[!-~])?$";
/// What the server checks of a payment's `returnUrl` before the WHATWG URL parser has its say
/// (payments.rs): `http://` or `https://`, then a host. The parser refuses more (a malformed
/// host or port), which JSON Schema cannot state.
const RETURN_URL: &str = "^https?://[^/\\u0000-\\u001f\\u007f][^\\u0000-\\u001f\\u007f]*$";
/// A webhook URL as the WHATWG parser reads it: optional leading spaces, the scheme in any case,
/// then anything it can parse; the mode's rules (SPEC §6) narrow it further.
const WEBHOOK_URL: &str = "^ *[Hh][Tt][Tt][Pp][Ss]?:[^\\u0000-\\u001f\\u007f]*$";

/// Unique ids, named after what each operation does (utoipa uses the handler's name, and
/// several modules have a `create`).
const OPERATION_IDS: &[(&str, &str, &str)] = &[
    ("post", "/v1/payments", "createPayment"),
    ("get", "/v1/payments", "listPayments"),
    ("get", "/v1/payments/{id}", "getPayment"),
    ("post", "/v1/payments/{id}/capture", "capturePayment"),
    ("post", "/v1/payments/{id}/cancel", "cancelPayment"),
    ("get", "/v1/payments/{id}/attempts", "listPaymentAttempts"),
    (
        "post",
        "/v1/test_helpers/payments/{id}/pay",
        "testPayPayment",
    ),
    (
        "post",
        "/v1/test_helpers/payments/{id}/authenticate",
        "testAuthenticatePayment",
    ),
    ("get", "/v1/disputes", "listDisputes"),
    ("get", "/v1/disputes/{id}", "getDispute"),
    ("post", "/v1/disputes/{id}", "updateDispute"),
    ("post", "/v1/disputes/{id}/close", "closeDispute"),
    (
        "post",
        "/v1/test_helpers/payments/{id}/dispute",
        "testDisputePayment",
    ),
    (
        "post",
        "/v1/test_helpers/disputes/{id}/resolve",
        "testResolveDispute",
    ),
    ("post", "/v1/refunds", "createRefund"),
    ("get", "/v1/refunds", "listRefunds"),
    ("get", "/v1/refunds/{id}", "getRefund"),
    ("get", "/v1/balance", "getBalance"),
    ("get", "/v1/balance_transactions", "listBalanceTransactions"),
    (
        "get",
        "/v1/balance_transactions/{id}",
        "getBalanceTransaction",
    ),
    ("get", "/v1/settlements", "listSettlements"),
    ("get", "/v1/settlements/{id}", "getSettlement"),
    (
        "get",
        "/v1/settlements/{id}/transactions",
        "listSettlementTransactions",
    ),
    (
        "post",
        "/v1/test_helpers/settlements/run",
        "testRunSettlements",
    ),
    ("post", "/v1/test_helpers/reset", "testReset"),
    ("get", "/v1/test_helpers/clock", "getTestClock"),
    ("post", "/v1/test_helpers/clock/advance", "testAdvanceClock"),
    ("post", "/v1/test_helpers/faults", "createTestFaultRule"),
    ("get", "/v1/test_helpers/faults", "listTestFaultRules"),
    ("delete", "/v1/test_helpers/faults", "clearTestFaultRules"),
    ("get", "/v1/events", "listEvents"),
    ("get", "/v1/events/{id}", "getEvent"),
    ("post", "/v1/events/{id}/resend", "resendEvent"),
    ("post", "/v1/accounts", "createAccount"),
    ("get", "/v1/accounts", "listAccounts"),
    ("get", "/v1/accounts/{id}", "getAccount"),
    ("post", "/v1/accounts/{id}", "updateAccount"),
    ("delete", "/v1/accounts/{id}", "deleteAccount"),
    ("get", "/v1/account", "getOwnAccount"),
    ("post", "/v1/webhooks", "createWebhook"),
    ("get", "/v1/webhooks", "listWebhooks"),
    ("get", "/v1/webhooks/{id}", "getWebhook"),
    ("post", "/v1/webhooks/{id}", "updateWebhook"),
    ("delete", "/v1/webhooks/{id}", "deleteWebhook"),
    (
        "get",
        "/v1/webhooks/{id}/deliveries",
        "listWebhookDeliveries",
    ),
    ("post", "/v1/webhooks/{id}/test", "testWebhook"),
    ("get", "/healthz", "healthz"),
    ("get", "/readyz", "readyz"),
    ("get", "/metrics", "metrics"),
    ("get", "/v1/openapi.json", "openapi"),
];

pub fn apply(document: &mut Value) {
    operation_ids(document);
    request_schemas(document);
    form_schemas(document);
    optional_bodies(document);
    for (path, method, operation) in operations(document) {
        parameters(&path, &method, operation);
        responses(&path, &method, operation);
    }
    links(document);
    document["components"]["headers"] = json!({
        "X-Request-Id": {
            "description": "The request's id (`req_…`), also in error bodies and logs",
            "required": true,
            "schema": {"type": "string", "pattern": "^req_[0-9A-Za-z]+$"},
        },
    });
}

/// Every operation with its path and method.
fn operations(document: &mut Value) -> Vec<(String, String, &mut Map<String, Value>)> {
    let mut found = Vec::new();
    if let Some(paths) = document["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            if let Some(item) = item.as_object_mut() {
                for (method, operation) in item.iter_mut() {
                    if let Some(operation) = operation.as_object_mut() {
                        found.push((path.clone(), method.clone(), operation));
                    }
                }
            }
        }
    }
    found
}

fn operation_ids(document: &mut Value) {
    for (path, method, operation) in operations(document) {
        let id = OPERATION_IDS
            .iter()
            .find(|(m, p, _)| *m == method && *p == path)
            .map(|(_, _, id)| *id);
        if let Some(id) = id {
            operation.insert("operationId".into(), json!(id));
        }
    }
}

/// `schema` merged into the property `name` of component `component` (keys of `schema` win).
fn constrain(document: &mut Value, component: &str, name: &str, schema: Value) {
    let property = property(document, component, name);
    if let (Some(property), Value::Object(schema)) =
        (property.and_then(Value::as_object_mut), schema)
    {
        property.extend(schema);
    }
}

/// The schema of property `name` of component `component`; a unit test checks that every one
/// named here exists.
fn property<'a>(document: &'a mut Value, component: &str, name: &str) -> Option<&'a mut Value> {
    let found = document.pointer_mut(&format!(
        "/components/schemas/{component}/properties/{name}"
    ));
    debug_assert!(found.is_some(), "{component}.{name} is not in the document");
    found
}

/// The property `name` of component `component` replaced by `schema`, keeping its description.
fn replace(document: &mut Value, component: &str, name: &str, mut schema: Value) {
    let Some(property) = property(document, component, name) else {
        return;
    };
    if let Some(description) = property.get("description").cloned() {
        schema["description"] = description;
    }
    *property = schema;
}

/// `null` or one of `schemas`: an optional body field given as `null` is left out.
fn nullable(schemas: Vec<Value>) -> Value {
    let mut one_of = vec![json!({"type": "null"})];
    one_of.extend(schemas);
    json!({ "oneOf": one_of })
}

fn metadata_schema() -> Value {
    json!({
        "type": ["object", "null"],
        "description": format!(
            "String keys to string values, echoed verbatim: at most {METADATA_KEYS_MAX} keys, \
             keys of 1 to {METADATA_KEY_LEN_MAX} characters, values of at most \
             {METADATA_VALUE_LEN_MAX}."
        ),
        "maxProperties": METADATA_KEYS_MAX,
        "propertyNames": {
            "type": "string",
            "minLength": 1,
            "maxLength": METADATA_KEY_LEN_MAX,
            "pattern": NO_CONTROL,
        },
        "additionalProperties": {
            "type": "string",
            "maxLength": METADATA_VALUE_LEN_MAX,
            "pattern": FREE_TEXT,
        },
    })
}

fn amount_schema() -> Value {
    json!({"minimum": AMOUNT_MINOR_UNITS_MIN, "maximum": AMOUNT_MINOR_UNITS_MAX})
}

/// The names among `candidates` that `parse` accepts: the enum follows the parser, so a value
/// the server learns to accept (or stops accepting) changes the document with it.
fn accepted<T>(
    candidates: &[&'static str],
    parse: impl Fn(&str) -> Option<T>,
) -> Vec<&'static str> {
    candidates
        .iter()
        .copied()
        .filter(|name| parse(name).is_some())
        .collect()
}

fn event_types_schema(nullable_field: bool) -> Value {
    let all = json!({
        "type": "array",
        "description": "`[\"*\"]`: every event type, now and to come.",
        "items": {"const": "*"},
        "minItems": 1,
        "maxItems": 1,
    });
    let listed = json!({
        "type": "array",
        "items": {"type": "string", "enum": EVENT_TYPES},
        "minItems": 1,
    });
    if nullable_field {
        nullable(vec![all, listed])
    } else {
        json!({"oneOf": [all, listed]})
    }
}

fn webhook_url_schema() -> Value {
    json!({
        "type": "string",
        "format": "uri",
        "minLength": 1,
        "maxLength": WEBHOOK_URL_BYTES_MAX,
        "pattern": WEBHOOK_URL,
    })
}

fn request_schemas(document: &mut Value) {
    let free_text = |max: usize| json!({"maxLength": max, "pattern": FREE_TEXT});
    let id = json!({"minLength": 1, "pattern": NO_CONTROL});

    constrain(document, "CreatePaymentRequest", "amount", amount_schema());
    for component in ["CreateAccountRequest", "UpdateAccountRequest"] {
        constrain(
            document,
            component,
            "name",
            json!({"minLength": 1, "maxLength": ACCOUNT_NAME_LEN_MAX, "pattern": NO_CONTROL}),
        );
    }
    constrain(
        document,
        "CreatePaymentRequest",
        "currency",
        json!({"enum": Currency::codes().collect::<Vec<_>>()}),
    );
    constrain(
        document,
        "CreatePaymentRequest",
        "returnUrl",
        json!({
            "format": "uri",
            "maxLength": RETURN_URL_LEN_MAX,
            "pattern": RETURN_URL,
        }),
    );
    constrain(
        document,
        "CreatePaymentRequest",
        "description",
        free_text(PAYMENT_DESCRIPTION_CHARS_MAX),
    );
    replace(
        document,
        "CreatePaymentRequest",
        "metadata",
        metadata_schema(),
    );
    constrain(
        document,
        "CreatePaymentRequest",
        "idempotencyKey",
        json!({"minLength": 1, "maxLength": IDEMPOTENCY_KEY_LEN_MAX, "pattern": NO_CONTROL}),
    );

    // Exactly one of `seconds` and `to`.
    let advance = &mut document["components"]["schemas"]["AdvanceClockRequest"];
    advance["minProperties"] = json!(1);
    advance["maxProperties"] = json!(1);
    constrain(
        document,
        "AdvanceClockRequest",
        "seconds",
        json!({"minimum": 1, "maximum": TEST_CLOCK_ADVANCE_MS_MAX / 1000}),
    );
    constrain(
        document,
        "AdvanceClockRequest",
        "to",
        json!({"format": "date-time"}),
    );

    // Fault rules (SPEC §12). What a pattern cannot say (the rules' own path is refused) is
    // in the handler's 400.
    constrain(
        document,
        "CreateFaultRuleRequest",
        "method",
        json!({"enum": ["GET", "POST", "DELETE"]}),
    );
    constrain(
        document,
        "CreateFaultRuleRequest",
        "path",
        json!({
            "maxLength": TEST_FAULT_RULE_PATH_CHARS_MAX,
            // `/v1/`, visible ASCII but `#`, `*` and `?`, and an optional `*` at the end.
            "pattern": "^/v1/[!\"$-)+->@-~]*\\*?$",
        }),
    );
    constrain(
        document,
        "CreateFaultRuleRequest",
        "fault",
        json!({"pattern": format!(
            "^(latency=(0|[1-9][0-9]{{0,3}}|[12][0-9]{{4}}|30000)|status=(429|500|502|503)\
             |commit-then-500|commit-then-drop)$"
        )}),
    );
    constrain(
        document,
        "CreateFaultRuleRequest",
        "count",
        json!({"minimum": 1, "maximum": TEST_FAULT_RULE_COUNT_MAX}),
    );

    constrain(document, "CapturePaymentRequest", "amount", amount_schema());

    constrain(
        document,
        "TestPayRequest",
        "card",
        json!({"pattern": format!(
            "^[ -]*([0-9][ -]*){{{CARD_NUMBER_DIGITS_MIN},{CARD_NUMBER_DIGITS_MAX}}}$"
        )}),
    );
    replace(
        document,
        "TestPayRequest",
        "expMonth",
        nullable(vec![
            json!({"type": "integer", "minimum": 1, "maximum": 12}),
        ]),
    );
    replace(
        document,
        "TestPayRequest",
        "expYear",
        nullable(vec![
            json!({"type": "integer", "minimum": 0, "maximum": 99, "description": "20xx"}),
            json!({
                "type": "integer",
                "minimum": CARD_EXPIRY_YEAR_MIN,
                "maximum": CARD_EXPIRY_YEAR_MAX
            }),
        ]),
    );
    constrain(
        document,
        "TestPayRequest",
        "cvc",
        json!({"pattern": "^[0-9]{3,4}$"}),
    );

    constrain(document, "CreateRefundRequest", "payment", id.clone());
    constrain(document, "CreateRefundRequest", "amount", amount_schema());
    constrain(
        document,
        "CreateRefundRequest",
        "reason",
        json!({"enum": accepted(
            &["duplicate", "fraudulent", "requested_by_customer"],
            RefundReason::parse,
        ).into_iter().map(Value::from).chain([Value::Null]).collect::<Vec<_>>()}),
    );
    replace(
        document,
        "CreateRefundRequest",
        "metadata",
        metadata_schema(),
    );

    constrain(document, "TestDisputeRequest", "amount", amount_schema());
    let reasons: Vec<&str> = DisputeReason::ALL.iter().map(|r| r.as_str()).collect();
    constrain(
        document,
        "TestDisputeRequest",
        "reason",
        json!({"enum": accepted(&reasons, DisputeReason::parse)
            .into_iter().map(Value::from).chain([Value::Null]).collect::<Vec<_>>()}),
    );
    for field in [
        "customerName",
        "productDescription",
        "shippingTrackingNumber",
        "uncategorizedText",
    ] {
        constrain(
            document,
            "DisputeEvidence",
            field,
            free_text(DISPUTE_EVIDENCE_CHARS_MAX),
        );
    }
    replace(
        document,
        "UpdateDisputeRequest",
        "metadata",
        metadata_schema(),
    );

    let description = free_text(WEBHOOK_DESCRIPTION_CHARS_MAX);
    replace(
        document,
        "CreateWebhookRequest",
        "url",
        webhook_url_schema(),
    );
    replace(
        document,
        "CreateWebhookRequest",
        "events",
        event_types_schema(true),
    );
    constrain(
        document,
        "CreateWebhookRequest",
        "description",
        description.clone(),
    );
    replace(
        document,
        "UpdateWebhookRequest",
        "url",
        nullable(vec![webhook_url_schema()]),
    );
    replace(
        document,
        "UpdateWebhookRequest",
        "events",
        event_types_schema(true),
    );
    constrain(document, "UpdateWebhookRequest", "description", description);
    constrain(
        document,
        "UpdateWebhookRequest",
        "status",
        json!({"enum": ["enabled", "disabled", null]}),
    );
    constrain(document, "ResendEventRequest", "webhook", id);
    // Faults on purpose (SPEC §12): probabilities, and a bounded delay.
    for field in ["duplicate", "badSignature"] {
        constrain(
            document,
            "WebhookFaults",
            field,
            json!({"minimum": 0, "maximum": 1}),
        );
    }
    constrain(
        document,
        "WebhookFaults",
        "delayMs",
        json!({"minimum": 0, "maximum": WEBHOOK_FAULT_DELAY_MS_MAX}),
    );
}

/// A form body cannot say `null`, and the fuzzers' form encoders send `True` for a boolean and
/// cannot nest: the form media types get a copy of each body schema with `null` left out,
/// booleans as the words `true`/`false`, and no object or array fields (which a form spells
/// `metadata[key]=value` and `events[]=type`; accepted, but not described here).
fn form_schemas(document: &mut Value) {
    let mut forms = Map::new();
    for (_, _, operation) in operations(document) {
        let Some(content) = operation
            .get_mut("requestBody")
            .and_then(|body| body["content"].get_mut("application/x-www-form-urlencoded"))
        else {
            continue;
        };
        let Some(reference) = content["schema"]["$ref"].as_str().map(str::to_owned) else {
            continue;
        };
        let name = reference.rsplit('/').next().unwrap_or_default().to_owned();
        let form_name = format!("{name}Form");
        content["schema"] = json!({"$ref": format!("#/components/schemas/{form_name}")});
        forms.insert(form_name, json!(name));
    }
    for (form_name, name) in forms {
        let name = name.as_str().unwrap_or_default();
        let mut schema = document["components"]["schemas"][name].clone();
        let mut dropped = Vec::new();
        let components = document["components"]["schemas"].clone();
        if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            properties.retain(|property, value| {
                let nested = value.to_string();
                let keep = !(nested.contains("\"object\"")
                    || nested.contains("\"array\"")
                    || refers_to_an_object(&nested, &components));
                if !keep {
                    dropped.push(property.clone());
                }
                keep
            });
            for value in properties.values_mut() {
                form_field(value);
            }
        }
        let note = if dropped.is_empty() {
            String::new()
        } else {
            format!(
                " Nested fields ({}) are written with brackets, e.g. `metadata[key]=value`.",
                dropped.join(", ")
            )
        };
        schema["description"] = json!(format!(
            "{} As a form (application/x-www-form-urlencoded).{note}",
            schema["description"].as_str().unwrap_or_default()
        ));
        document["components"]["schemas"][form_name] = schema;
    }
}

/// Whether the schema text `nested` refers to a component that is an object (a nested
/// structure such as a dispute's `evidence`, written with brackets in a form), not to an enum.
fn refers_to_an_object(nested: &str, components: &Value) -> bool {
    const PREFIX: &str = "#/components/schemas/";
    nested.match_indices(PREFIX).any(|(at, _)| {
        let name: String = nested[at + PREFIX.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        components[name.as_str()]["type"] == "object"
    })
}

fn form_field(value: &mut Value) {
    if let Some(one_of) = value.get_mut("oneOf").and_then(Value::as_array_mut) {
        one_of.retain(|branch| branch["type"] != "null");
        if one_of.len() == 1 {
            let only = one_of.remove(0);
            let description = value.get("description").cloned();
            *value = only;
            if let Some(description) = description {
                value["description"] = description;
            }
        }
    }
    if let Some(types) = value.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|kind| kind != "null");
        if types.len() == 1 {
            value["type"] = types.remove(0);
        }
    }
    if let Some(values) = value.get_mut("enum").and_then(Value::as_array_mut) {
        values.retain(|v| !v.is_null());
    }
    // An empty form value is the empty string, as in JSON (`http/body.rs`): `minLength` holds.
    if value["type"] == "boolean" {
        value["type"] = json!("string");
        value["enum"] = json!(["true", "false"]);
    }
}

fn parameter_schema(name: &str, location: &str) -> Option<Value> {
    let schema = match (location, name) {
        ("query", "limit") => json!({
            "type": "integer",
            "minimum": 1,
            "maximum": LIST_LIMIT_MAX,
            "default": LIST_LIMIT_DEFAULT,
        }),
        // A query parameter that is given must have a value (http/text.rs refuses `payment=`).
        ("query", "starting_after" | "ending_before" | "payment" | "source" | "settlement") => {
            json!({"type": "string", "minLength": 1, "pattern": NO_CONTROL})
        }
        ("path", "id") => json!({"type": "string", "minLength": 1, "pattern": NO_CONTROL}),
        // list.rs: an integer is Unix seconds, anything else must be RFC 3339.
        ("query", "created[gte]" | "created[lt]") => json!({
            "oneOf": [
                {"type": "integer", "description": "Unix seconds",
                 "minimum": i64::MIN / 1000, "maximum": i64::MAX / 1000},
                {"type": "string", "format": "date-time", "pattern": "^[0-9]{4}-"},
            ],
        }),
        ("header", "Idempotency-Key") => json!({
            "type": "string",
            "minLength": 1,
            "maxLength": IDEMPOTENCY_KEY_LEN_MAX,
            "pattern": HEADER_KEY,
        }),
        _ => return None,
    };
    Some(schema)
}

/// The filters that take one of a fixed set of values, per path.
fn filter_enum(path: &str, name: &str) -> Option<Vec<&'static str>> {
    let statuses: Vec<&'static str> = PaymentStatus::ALL.iter().map(|s| s.as_str()).collect();
    match (path, name) {
        ("/v1/payments", "status") => Some(statuses),
        ("/v1/settlements", "status") => {
            Some(accepted(&["pending", "paid"], SettlementStatus::parse))
        }
        ("/v1/settlements", "currency") => Some(Currency::codes().collect()),
        ("/v1/disputes", "status") => Some(DisputeStatus::ALL.iter().map(|s| s.as_str()).collect()),
        // SPEC §7's types, as far as this server books them.
        ("/v1/balance_transactions", "type") => Some(accepted(
            &[
                "payment",
                "refund",
                "fee",
                "dispute",
                "dispute_reversal",
                "payout",
            ],
            BalanceType::parse,
        )),
        _ => None,
    }
}

/// A body whose fields are all optional may be left out (`{}` is implied, body.rs).
fn optional_bodies(document: &mut Value) {
    let schemas = document["components"]["schemas"].clone();
    for (_, _, operation) in operations(document) {
        let Some(body) = operation.get_mut("requestBody") else {
            continue;
        };
        let all_optional = body["content"]
            .as_object()
            .into_iter()
            .flat_map(|content| content.values())
            .all(|media| {
                let reference = media["schema"]["$ref"].as_str().unwrap_or_default();
                let name = reference.rsplit('/').next().unwrap_or_default();
                let schema = &schemas[name];
                schema["required"]
                    .as_array()
                    .is_none_or(|required| required.is_empty())
                    && schema["minProperties"].as_u64().unwrap_or(0) == 0
            });
        if all_optional {
            body["required"] = json!(false);
        }
    }
}

fn parameters(path: &str, method: &str, operation: &mut Map<String, Value>) {
    if method == "post" && path.starts_with("/v1/") {
        let parameters = operation
            .entry("parameters")
            .or_insert_with(|| json!([]))
            .as_array_mut();
        if let Some(parameters) = parameters {
            if !parameters.iter().any(|p| p["name"] == "Idempotency-Key") {
                parameters.push(json!({
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": false,
                    "description": "Makes retries safe",
                }));
            }
        }
    }
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters {
        let name = parameter["name"].as_str().unwrap_or_default().to_owned();
        let location = parameter["in"].as_str().unwrap_or_default().to_owned();
        if let Some(schema) = parameter_schema(&name, &location) {
            parameter["schema"] = schema;
        } else if let Some(values) = filter_enum(path, &name) {
            parameter["schema"] = json!({"type": "string", "enum": values});
        } else if (path, name.as_str()) == ("/v1/events", "type") {
            // events.rs: lower-case letters, dots and underscores, at most 64.
            parameter["schema"] =
                json!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[a-z._]+$"});
        }
        if name == "Idempotency-Key" {
            parameter["description"] = json!(format!(
                "Makes retries safe: 1 to {IDEMPOTENCY_KEY_LEN_MAX} visible ASCII characters; \
                 the first completed answer is replayed (`Idempotent-Replayed: true`)"
            ));
        }
    }
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    })
}

fn responses(path: &str, method: &str, operation: &mut Map<String, Value>) {
    let api = path.starts_with("/v1/") && path != "/v1/openapi.json";
    let has_id = path.contains('{');
    let has_body = operation.contains_key("requestBody");
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if api {
        let mut add = |status: &str, response: Value| {
            responses.entry(status).or_insert(response);
        };
        add(
            "400",
            error("Invalid parameters: a body field, query parameter or header is malformed, out of bounds or unknown (`param` names it)"),
        );
        add(
            "401",
            error("Missing, malformed, unknown or revoked API key"),
        );
        add(
            "403",
            error("The restricted key lacks the scope this route needs"),
        );
        if has_id || path.starts_with("/v1/test_helpers/") {
            add(
                "404",
                error("No such object in this account and mode (test helpers: a live key)"),
            );
        }
        if method == "post" {
            add(
                "409",
                error("`idempotency_key_reused` (another body) or `idempotency_key_in_use` (still running)"),
            );
        }
        if has_body {
            add(
                "408",
                error("`request_timeout`: the body did not arrive within `[http] body_read_timeout_ms` of the headers"),
            );
            add("413", error("The body is larger than 64 KiB"));
            add("415", error("The Content-Type is neither JSON nor a form"));
        }
        let retry_after = json!({
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "required": true,
                "schema": {"type": "integer", "minimum": 0},
            },
        });
        let mut rate_limited = error("Rate limited: `Retry-After` says when to retry");
        rate_limited["headers"] = retry_after.clone();
        add("429", rate_limited);
        let mut unavailable = error(
            "`service_unavailable`: the database is unreachable or refuses (restart, failover, \
             full disk), or card processing is unavailable; retry after `Retry-After` when given",
        );
        unavailable["headers"] = json!({
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "required": false,
                "schema": {"type": "integer", "minimum": 0},
            },
        });
        add("503", unavailable);
    }
    // Every answer, success or error, names its request (SPEC §2).
    for response in responses.values_mut() {
        let headers = response
            .as_object_mut()
            .map(|response| response.entry("headers").or_insert_with(|| json!({})));
        if let Some(Value::Object(headers)) = headers {
            headers.insert(
                "X-Request-Id".into(),
                json!({"$ref": "#/components/headers/X-Request-Id"}),
            );
        }
    }
}

/// A link to `operation` filling each of `parameters` (name → runtime expression), and the
/// body fields of `body`.
fn link(operation: &str, parameters: &[(&str, &str)], body: Option<Value>) -> Value {
    let mut link = json!({
        "operationId": operation,
        "parameters": parameters.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
    });
    if let Some(body) = body {
        link["requestBody"] = body;
    }
    link
}

/// Named links of one response.
type Links = Vec<(String, Value)>;

fn links(document: &mut Value) {
    const ID: &str = "$response.body#/id";
    const FIRST: &str = "$response.body#/data/0/id";
    let on_id = |operations: &[&str]| -> Vec<(String, Value)> {
        operations
            .iter()
            .map(|operation| (operation.to_string(), link(operation, &[("id", ID)], None)))
            .collect()
    };
    let payment_actions = || {
        let mut links = on_id(&[
            "getPayment",
            "capturePayment",
            "cancelPayment",
            "testPayPayment",
            "testAuthenticatePayment",
        ]);
        links.push((
            "createRefund".into(),
            link("createRefund", &[], Some(json!({"payment": ID}))),
        ));
        links.push((
            "listRefunds".into(),
            link("listRefunds", &[("payment", ID)], None),
        ));
        links.push((
            "listBalanceTransactions".into(),
            link("listBalanceTransactions", &[("source", ID)], None),
        ));
        links.push((
            "testDisputePayment".into(),
            link("testDisputePayment", &[("id", ID)], None),
        ));
        links.push((
            "listDisputes".into(),
            link("listDisputes", &[("payment", ID)], None),
        ));
        links
    };
    let dispute_actions = || {
        let mut links = on_id(&[
            "getDispute",
            "updateDispute",
            "closeDispute",
            "testResolveDispute",
        ]);
        links.push((
            "getPayment".into(),
            link("getPayment", &[("id", "$response.body#/payment")], None),
        ));
        links.push((
            "listBalanceTransactions".into(),
            link("listBalanceTransactions", &[("source", ID)], None),
        ));
        links
    };
    let first = |operations: &[&str]| -> Vec<(String, Value)> {
        operations
            .iter()
            .map(|operation| {
                (
                    operation.to_string(),
                    link(operation, &[("id", FIRST)], None),
                )
            })
            .collect()
    };
    let webhook_actions = || {
        on_id(&[
            "getWebhook",
            "updateWebhook",
            "listWebhookDeliveries",
            "testWebhook",
            "deleteWebhook",
        ])
    };
    let table: Vec<(&str, &str, &str, Links)> = vec![
        ("/v1/payments", "post", "201", payment_actions()),
        ("/v1/payments/{id}", "get", "200", payment_actions()),
        (
            "/v1/payments/{id}/capture",
            "post",
            "200",
            payment_actions(),
        ),
        ("/v1/payments/{id}/cancel", "post", "200", payment_actions()),
        (
            "/v1/test_helpers/payments/{id}/pay",
            "post",
            "200",
            payment_actions(),
        ),
        (
            "/v1/test_helpers/payments/{id}/authenticate",
            "post",
            "200",
            payment_actions(),
        ),
        ("/v1/payments", "get", "200", first(&["getPayment"])),
        (
            "/v1/refunds",
            "post",
            "201",
            [
                on_id(&["getRefund"]),
                vec![
                    (
                        "getPayment".into(),
                        link("getPayment", &[("id", "$response.body#/payment")], None),
                    ),
                    (
                        "listBalanceTransactions".into(),
                        link("listBalanceTransactions", &[("source", ID)], None),
                    ),
                ],
            ]
            .concat(),
        ),
        ("/v1/refunds", "get", "200", first(&["getRefund"])),
        (
            "/v1/test_helpers/payments/{id}/dispute",
            "post",
            "201",
            dispute_actions(),
        ),
        ("/v1/disputes/{id}", "get", "200", dispute_actions()),
        ("/v1/disputes/{id}", "post", "200", dispute_actions()),
        ("/v1/disputes/{id}/close", "post", "200", dispute_actions()),
        (
            "/v1/disputes",
            "get",
            "200",
            first(&["getDispute", "updateDispute", "closeDispute"]),
        ),
        (
            "/v1/balance_transactions",
            "get",
            "200",
            first(&["getBalanceTransaction"]),
        ),
        (
            "/v1/settlements",
            "get",
            "200",
            first(&["getSettlement", "listSettlementTransactions"]),
        ),
        (
            "/v1/test_helpers/settlements/run",
            "post",
            "200",
            first(&["getSettlement", "listSettlementTransactions"]),
        ),
        (
            "/v1/events",
            "get",
            "200",
            first(&["getEvent", "resendEvent"]),
        ),
        ("/v1/webhooks", "post", "201", webhook_actions()),
        ("/v1/webhooks/{id}", "post", "200", webhook_actions()),
        ("/v1/webhooks", "get", "200", first(&["getWebhook"])),
    ];
    for (path, method, status, links) in table {
        let pointer = format!(
            "/paths/{}/{method}/responses/{status}",
            path.replace('/', "~1")
        );
        let response = document.pointer_mut(&pointer);
        debug_assert!(
            response.is_some(),
            "{method} {path} {status} is not in the document"
        );
        if let Some(response) = response {
            response["links"] = Value::Object(links.into_iter().collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn operation_ids_are_unique_and_links_name_real_operations() {
        let document: Value =
            serde_json::from_str(super::super::document_json()).expect("the document is JSON");
        let mut ids = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let id = operation["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
                // Named here, not left to utoipa (which would use the handler's name).
                assert!(
                    OPERATION_IDS
                        .iter()
                        .any(|(m, p, named)| m == method && p == path && *named == id),
                    "{method} {path} has no operationId in OPERATION_IDS"
                );
            }
        }
        for item in document["paths"].as_object().expect("paths").values() {
            for operation in item.as_object().expect("path item").values() {
                for response in operation["responses"]
                    .as_object()
                    .expect("responses")
                    .values()
                {
                    for link in response["links"].as_object().into_iter().flatten() {
                        let target = link.1["operationId"].as_str().expect("operationId");
                        assert!(ids.contains(target), "link to unknown {target}");
                    }
                }
            }
        }
    }
}
