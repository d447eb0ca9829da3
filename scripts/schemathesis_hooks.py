"""Schemathesis hooks for scripts/schemathesis.sh (loaded through scripts/schemathesis.toml).

They relate what JSON Schema cannot: a header to a body field, and a URL to the WHATWG parser.
Both only make generated *valid* requests valid in that respect too; invalid (negative) ones
are left as generated, so the refusals are still tested.
"""

import re

import schemathesis
from schemathesis.core.parameters import ParameterLocation

# A URL of this shape always parses (a host whose last label starts with a letter, so never an
# IP literal); the document states only what the server checks before parsing.
PARSEABLE_URL = re.compile(
    r"https?://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.[a-z][a-z0-9-]*(/[!-~]*)?"
)
URL_FIELDS = {
    "/v1/payments": ("returnUrl", "https://shop.example/return"),
    "/v1/webhooks": ("url", "https://hooks.example/vinr"),
    "/v1/webhooks/{id}": ("url", "https://hooks.example/vinr"),
}


def _body_is_positive(case):
    meta = getattr(case, "_meta", None)
    return meta is not None and not meta.is_negative_at(ParameterLocation.BODY)


@schemathesis.hook
def map_case(context, case):
    if case.method.upper() != "POST" or not isinstance(case.body, dict):
        return case
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
    # A valid request's URL is one that parses.
    field = URL_FIELDS.get(case.path)
    if field is not None:
        name, fallback = field
        value = case.body.get(name)
        if isinstance(value, str) and not PARSEABLE_URL.fullmatch(value):
            case.body[name] = fallback
    return case
