//! Signed callbacks to merchants (outgoing webhooks, DESIGN.md "Callbacks"). Built so far: the
//! Standard Webhooks signature and the OpenAPI description of every event. Delivery (workers,
//! retries, attempt log, redelivery, secret rotation) is the rest of the callbacks issue; the
//! events it will deliver are already in the outbox.

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
