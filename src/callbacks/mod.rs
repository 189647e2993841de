//! Signed callbacks to merchants (outgoing webhooks, DESIGN.md "Callbacks").
//!
//! The path of an event: the change that causes it records it in the outbox in its own
//! transaction; a trigger gives every merchant event its delivery row (pending if the merchant
//! subscribes to the type and has a callback URL, skipped otherwise) and wakes the workers at
//! commit; [`delivery`] sends it, signed as [`signature`] says, to a destination
//! [`destination`] allows, retrying on the configured schedule and logging every attempt. The
//! merchant reads that log, asks for a redelivery and rotates its secret through the merchant
//! API (`merchants::events`), which uses this module, never the reverse.

pub mod delivery;
pub mod destination;
pub mod signature;

/// The events merchants receive, with what each announces; `data` is the order as the merchant
/// API returns it, refunds included.
pub const MERCHANT_EVENTS: &[(&str, &str)] = &[
    ("payment.succeeded", "A citizen paid the order."),
    (
        "refund.succeeded",
        "The merchant refunded part or all of the order.",
    ),
    ("order.expired", "The order reached its expiry time unpaid."),
    (
        "order.cancelled",
        "The merchant cancelled the order before it was paid.",
    ),
];

/// The events billers receive; `data` is the bill as the biller API returns it.
pub const BILLER_EVENTS: &[(&str, &str)] = &[
    ("bill.paid", "The bill was paid (by any channel)."),
    (
        "bill.cancelled",
        "The bill was cancelled (by the biller, or with its dossier); a paid one was refunded.",
    ),
    (
        "bill.payment_voided",
        "A cash payment taken at a counter by mistake was voided with a supervisor's approval: the bill is unpaid again.",
    ),
];

pub fn is_merchant_event(event_type: &str) -> bool {
    MERCHANT_EVENTS
        .iter()
        .any(|(known, _)| *known == event_type)
}

pub fn is_biller_event(event_type: &str) -> bool {
    BILLER_EVENTS.iter().any(|(known, _)| *known == event_type)
}
