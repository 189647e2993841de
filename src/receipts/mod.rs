//! Receipts (being written).

pub mod jcs;
