"""Schemathesis hooks for scripts/schemathesis.sh (loaded through scripts/schemathesis.toml).

They state what JSON Schema cannot: a header's relation to a body field, a URL that the WHATWG
parser takes, a card number's Luhn check digit, an expiry that is not in the past, a cursor
that names an existing object.
Both only make generated *valid* requests valid in that respect too; invalid (negative) ones
are left as generated, so the refusals are still tested.
"""

import datetime
import os
import re

import schemathesis
from schemathesis.core.parameters import ParameterLocation

# A URL of this shape always parses (a host whose last label starts with a letter, so never an
# IP literal); the document states only what the server checks before parsing.
PARSEABLE_URL = re.compile(
    r"https?://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.[a-z][a-z0-9-]*(/[!-~]*)?"
)
# SPEC §4's sandbox cards: approved, 3-D Secure, each decline, refunds that fail; SPEC §11's
# disputed card.
SANDBOX_CARDS = [
    "4242424242424242",
    "4000000000003220",
    "4000000000000002",
    "4000000000009995",
    "4000000000000069",
    "4000000000000119",
    "5555555555554444",
    "4000000000005126",
    "4000000000000259",
]
PAY_PATH = "/v1/test_helpers/payments/{id}/pay"
URL_FIELDS = {
    "/v1/payments": ("returnUrl", "https://shop.example/return"),
    "/v1/webhooks": ("url", "http://127.0.0.1:9/vinr"),
    "/v1/webhooks/{id}": ("url", "http://127.0.0.1:9/vinr"),
}
# Webhook endpoints the fuzzer registers are delivered to, and this machine may send traffic to
# loopback only (not even a DNS query to its resolver). scripts/schemathesis.sh runs the
# server in a network namespace with nothing but loopback, and then URLs stay as generated.
# Where no namespace could be made, every webhook URL, valid and invalid alike, is replaced by
# a closed loopback port: rewriting only the host would miss what the WHATWG parser still
# reads as one (`https:evil.example`, backslashes, leading spaces).
WEBHOOK_PATHS = ("/v1/webhooks", "/v1/webhooks/{id}")
# SPEC §12: a fault rule the fuzzer makes would fault the fuzzer's own later requests (a 503
# for every GET, a dropped connection). A valid rule is pointed at a path no route has and at
# a fault that does nothing, and whatever rule was made is cleared right after the call.
FAULTS_PATH = "/v1/test_helpers/faults"
HARMLESS_RULE = {"path": "/v1/schemathesis/never-routed", "fault": "latency=0"}
ISOLATED = os.environ.get("VINR_SCHEMATHESIS_ISOLATED") == "1"


def _luhn_valid(card):
    digits = [int(c) for c in card if c.isdigit()]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _number(value):
    """A whole number as JSON or a form (text) carries it, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _valid_card(body):
    card = body.get("card")
    if isinstance(card, str) and not _luhn_valid(card):
        body["card"] = SANDBOX_CARDS[sum(map(ord, card)) % len(SANDBOX_CARDS)]
    # The server's defaults (December, three years on) are never in the past.
    month, year = _number(body.get("expMonth")), _number(body.get("expYear"))
    if year is not None and year < 100:
        year += 2000
    today = datetime.datetime.now(datetime.timezone.utc)
    if year is not None and (year, 12 if month is None else month) < (today.year, today.month):
        body.pop("expYear", None)
        body.pop("expMonth", None)


def _body_is_positive(case):
    meta = getattr(case, "_meta", None)
    return meta is not None and not meta.is_negative_at(ParameterLocation.BODY)


def _query_is_positive(case):
    meta = getattr(case, "_meta", None)
    return meta is not None and not meta.is_negative_at(ParameterLocation.QUERY)


@schemathesis.hook
def map_case(context, case):
    # A list's cursor must name an object of that list, and only one of the two may be given:
    # a valid request pages from the start (paging with real cursors is in the test suite).
    if case.method.upper() == "GET" and isinstance(case.query, dict) and _query_is_positive(case):
        if "starting_after" in case.query or "ending_before" in case.query:
            case.query = {k: v for k, v in case.query.items() if k not in ("starting_after", "ending_before")}
    if case.method.upper() != "POST" or not isinstance(case.body, dict):
        return case
    if not ISOLATED and case.path in WEBHOOK_PATHS and "url" in case.body:
        case.body = dict(case.body)
        case.body["url"] = URL_FIELDS[case.path][1]
    if not _body_is_positive(case):
        return case
    # Cases may share one generated body: change a copy.
    case.body = dict(case.body)
    # SPEC §2: on POST /v1/payments the body's `idempotencyKey` and the `Idempotency-Key`
    # header are one key, and 400 answers a pair that differs.
    if case.path == "/v1/payments":
        header = (case.headers or {}).get("Idempotency-Key")
        if header is not None and "idempotencyKey" in case.body:
            case.body["idempotencyKey"] = header
    if case.path == PAY_PATH:
        _valid_card(case.body)
    if case.path == FAULTS_PATH:
        case.body.update(HARMLESS_RULE)
    # A valid request's URL is one that parses.
    field = URL_FIELDS.get(case.path)
    if field is not None:
        name, fallback = field
        value = case.body.get(name)
        if isinstance(value, str) and not PARSEABLE_URL.fullmatch(value):
            case.body[name] = fallback
    return case


@schemathesis.hook
def after_call(context, case, response):
    if case.path == FAULTS_PATH and case.method.upper() == "POST" and response.status_code == 201:
        import requests

        base = response.request.url.split(FAULTS_PATH)[0]
        key = os.environ["VINR_SCHEMATHESIS_KEY"]
        requests.delete(base + FAULTS_PATH, headers={"Authorization": f"Bearer {key}"}, timeout=10)
