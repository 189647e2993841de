//! civicpay: the backend of a citizen super-app. Modules are named after what the product does;
//! `app` wires them into one router, `http` holds the plumbing every feature shares.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod background;
pub mod calendar;
pub mod callbacks;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod dossiers;
pub mod http;
pub mod idempotency;
pub mod ledger;
pub mod merchants;
pub mod openapi;
pub mod ops;
pub mod outbox;
pub mod payments;
pub mod procedures;
pub mod secrets;
pub mod units;
pub mod wallet;
