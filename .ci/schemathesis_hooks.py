"""Schemathesis hooks for `.ci/schemathesis` (loaded through SCHEMATHESIS_HOOKS).

Two things a correct client does that a fuzzer does not know to do, and nothing else:

1. `before_call`: one Idempotency-Key per distinct request. Schemathesis reuses a generated
   key value across cases with different bodies, and DESIGN.md answers a key reused with
   another request 422 `idempotency_key_reused`: right by contract, and no sign of a schema
   that refuses valid data. Each well-formed key (1-255 printable ASCII characters) gets a
   suffix derived from the method, path and body, so the same request keeps its key (and is
   replayed, as documented) and another request gets another key. Keys that are malformed on
   purpose (negative cases) are left alone. Deterministic, so `--seed` still repeats a run.

2. `filter_failure`: drops a `positive_data_acceptance` failure only when the refusal is about
   a secret the schema cannot know, never about the shape of the request:
   - 422 `otp_invalid`: a one-time code is known only to the phone it was texted to;
   - 422 `payment_pin_invalid`: a payment PIN is known only to its owner (the citizen run sends
     the demo citizen's real PIN in `X-Payment-Pin`; this covers `old_pin` of PUT /v1/wallet/pin);
   - 422 `validation_failed` naming only `cursor`: a cursor is opaque, and only a `next_cursor`
     the server issued is one (the OpenAPI document says so).
   Every other failure is kept, including 422 `validation_failed` on any other field: that is a
   constraint the schema does not state yet.
"""

from __future__ import annotations

import hashlib

import schemathesis

SECRET_CODES = {"otp_invalid", "payment_pin_invalid"}
SERVER_ISSUED_FIELDS = {"cursor"}


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        if name.lower() != "idempotency-key":
            continue
        value = headers[name]
        if not (isinstance(value, str) and 1 <= len(value) <= 255 and value.isascii() and value.isprintable()):
            continue
        request = repr((case.method.upper(), case.formatted_path, case.query, case.body))
        digest = hashlib.sha256(request.encode("utf-8", "backslashreplace")).hexdigest()[:16]
        headers[name] = f"{value[:238]}-{digest}"


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if "positive_data_acceptance" not in getattr(failure, "checks", ()):
        return True
    try:
        problem = response.json()
    except Exception:
        return True
    if not isinstance(problem, dict):
        return True
    code = problem.get("code")
    if code in SECRET_CODES:
        return False
    fields = {item.get("field") for item in problem.get("errors") or [] if isinstance(item, dict)}
    if code == "validation_failed" and fields and fields <= SERVER_ISSUED_FIELDS:
        return False
    return True
