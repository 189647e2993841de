//! One integration-test binary (faster to link than one per file). Every test that needs a
//! database gets a fresh one from `#[sqlx::test]`, migrated, so tests run in parallel.

mod accounts;
mod auth;
mod callbacks;
mod cli;
mod database;
mod demo;
mod dossiers;
mod errors;
mod helpers;
mod ledger;
mod merchants;
mod openapi;
mod operations;
mod payments;
mod procedures;
mod receiver;
mod shutdown;
mod units;
mod wallet;
