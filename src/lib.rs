//! civicpay: the backend of a citizen super-app. Modules are named after what the product does,
//! and read bottom-up; a module uses only modules of its own layer or below (and within a
//! layer, no two modules use each other), as `tests/it/layers.rs` checks:
//!
//! 1. foundations: `config`, `db`, `http` (the plumbing every feature shares), `crypto`,
//!    `domain` (`Phone`, `NationalId`, `Money`), `vietnam_time`, `secrets`, `background`;
//! 2. the ledger and its outbox: `ledger`, `outbox`;
//! 3. the application state, `state`, with the few files of features that it holds (each
//!    feature's `settings`, the providers, the metrics registry);
//! 4. the features: `units`, `auth`, `accounts`, `calendar`, `procedures`, `dossiers`,
//!    `wallet`, `callbacks`, `merchants`, `bills`, `payments`, `idempotency`, `ops`;
//! 5. the application: `openapi`, `router`, `demo`, `server`, `cli`.

pub mod accounts;
pub mod auth;
pub mod background;
pub mod bills;
pub mod calendar;
pub mod callbacks;
pub mod cli;
pub mod config;
pub mod console;
pub mod counters;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod domain;
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
pub mod receipts;
pub mod router;
pub mod scorecards;
pub mod secrets;
pub mod server;
pub mod state;
pub mod units;
pub mod vietnam_time;
pub mod wallet;
