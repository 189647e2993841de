"""Schemathesis hooks for `.ci/schemathesis` (loaded through SCHEMATHESIS_HOOKS).

Two things a correct client does that a fuzzer does not know to do, and nothing else:

1. `before_call`: one Idempotency-Key per distinct request. Schemathesis reuses a generated
   key value across cases with different bodies, and DESIGN.md answers a key reused with
   another request 422 `idempotency_key_reused`: right by contract, and no sign of a schema
   that refuses valid data. Each well-formed key (1-255 printable ASCII characters) gets a
   suffix derived from the method, path and body, so the same request keeps its key (and is
   replayed, as documented) and another request gets another key. Keys that are malformed on
   purpose (negative cases) are left alone. Deterministic, so `--seed` still repeats a run.

2. `filter_failure`: drops a `positive_data_acceptance` failure only when the refusal is one
   a JSON Schema cannot state, because it depends on what the server holds or on two fields at
   once, and only when that is what the problem says (the runs ask for English, and every
   field error of the answer must be one of these; anything else keeps the failure):
   - secrets: 422 `otp_invalid` (a one-time code is known only to the phone it was texted to),
     422 `payment_pin_invalid` (a payment PIN is known only to its owner: the citizen run sends
     the demo citizen's real PIN in `X-Payment-Pin`; this covers `old_pin` of PUT
     /v1/wallet/pin), and `cursor` refused (only a `next_cursor` the server issued is one);
   - what the server holds: a code that names no procedure, unit, merchant or biller of this
     server (or a customer code its biller does not know, a bill reference it holds already),
     a phone with no verified wallet or the caller's own, a unit of another level than the
     procedure's, a provider not enabled here, a bank account not in the verified holder's
     name, a PIN change without the current PIN once one is set, a new appointment not after
     the current due time, a shift's closing count that differs from the cash the server
     expects without a reason (the count is blind: only the server knows the expected cash);
   - two fields at once, checked against the request itself: a period whose `from` is after
     its `to` (both in the query), a bill whose `amount` is not the total of its items, a batch
     row repeating an earlier row's reference, a filing missing a document its procedure requires (none of
     the codes the answer lists as `missing_documents` is among the request's), an officer or
     supervisor without `unit_code`, a procedure's processing time in both units or neither,
     two of its required documents with one code;
   - U+0000 in a text field that the request really holds: the server refuses it by design
     (PostgreSQL text cannot hold it) and `.ci/schemathesis` asks for none, but the coverage
     phase generates some anyway.
   Every other failure is kept, including 422 `validation_failed` with any other message:
   that is a constraint the schema does not state yet.
"""

from __future__ import annotations

import hashlib

import schemathesis

SECRET_CODES = {"otp_invalid", "payment_pin_invalid"}

# English messages (src/http/messages.rs) of field errors about what the server holds.
SERVER_DATA_MESSAGES = {
    "The referenced object does not exist.",
    "No verified wallet has this phone number.",
    "You cannot transfer to yourself.",
    "This unit is not of the level that handles the procedure.",
    "This payment provider is not enabled on this server.",
    "Withdrawals go only to a bank account in the wallet holder's own name.",
    "To change the PIN, give the current one (old_pin).",
    "The new appointment must be after the current due time.",
    "No biller you can link has this code.",
    "The biller does not know this customer code.",
    "This reference already names a bill with other content.",
    "The count differs from the expected cash; give the reason for the difference.",
}
UNIT_REQUIRED = "Officers and supervisors must be bound to a unit."
ONE_TIME_UNIT = "Give the processing time in exactly one unit: working_days or working_hours."
CODES_REPEATED = "Each required document needs a code of its own."
PERIOD_REVERSED = "The first day (from) must not be after the last (to)."
MISSING_DOCUMENTS = "Mandatory documents are missing:"
NUL_REFUSED = "Must not contain the NUL character (U+0000)."
AMOUNT_NOT_TOTAL = "The amount must equal the total of the items."
REFERENCE_REPEATED = "An earlier row of the same batch has this reference."


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
    errors = [item for item in problem.get("errors") or [] if isinstance(item, dict)]
    if code != "validation_failed" or not errors:
        return True
    return not all(is_beyond_the_schema(case, problem, error) for error in errors)


def is_beyond_the_schema(case, problem, error):
    field, message = error.get("field") or "", error.get("message") or ""
    if field == "cursor" or message in SERVER_DATA_MESSAGES:
        return True
    if message == PERIOD_REVERSED:
        query = case.query or {}
        return str(query.get("from", "")) > str(query.get("to", "~"))
    body = case.body if isinstance(case.body, dict) else {}
    if message == UNIT_REQUIRED:
        return body.get("role") in ("officer", "supervisor") and body.get("unit_code") is None
    if message == ONE_TIME_UNIT:
        return (body.get("working_days") is None) == (body.get("working_hours") is None)
    if message == CODES_REPEATED:
        documents = body.get("required_documents") or []
        codes = [doc.get("code") for doc in documents if isinstance(doc, dict)]
        return len(codes) != len(set(codes))
    if message.startswith(MISSING_DOCUMENTS):
        given = {doc.get("code") for doc in body_documents(case) if isinstance(doc, dict)}
        missing = problem.get("missing_documents") or []
        return bool(missing) and not given.intersection(missing)
    if message == NUL_REFUSED:
        return "\0" in repr_of_field(case, field)
    bill = bill_of(case, error)
    if message == AMOUNT_NOT_TOTAL:
        items = [item for item in bill.get("items") or [] if isinstance(item, dict)]
        return bill.get("amount") != sum(item.get("amount") or 0 for item in items)
    if message == REFERENCE_REPEATED:
        index = error.get("index")
        rows = body.get("bills") or []
        earlier = [row.get("reference") for row in rows[:index] if isinstance(row, dict)]
        return isinstance(index, int) and bill.get("reference") in earlier
    return False


def bill_of(case, error):
    """The bill a field error is about: the batch row at its `index`, or the body itself."""
    body = case.body if isinstance(case.body, dict) else {}
    index = error.get("index")
    rows = body.get("bills")
    if isinstance(index, int) and isinstance(rows, list) and index < len(rows):
        return rows[index] if isinstance(rows[index], dict) else {}
    return body


def body_documents(case):
    body = case.body if isinstance(case.body, dict) else {}
    documents = body.get("documents")
    return documents if isinstance(documents, list) else []


def repr_of_field(case, field):
    """The text of the request at `field` (`a.b[0].c`), or of the whole request if not found."""
    value = case.body
    for part in field.replace("[", ".[").split("."):
        if not part:
            continue
        try:
            value = value[int(part[1:-1])] if part.startswith("[") else value[part]
        except (KeyError, IndexError, TypeError, ValueError):
            return repr((case.body, case.query, case.path_parameters))
    return value if isinstance(value, str) else repr(value)
