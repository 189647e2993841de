//! One integration-test binary (faster to link than one per file). Every test that needs a
//! database gets a fresh one from `#[sqlx::test]`, migrated, so tests run in parallel. What the
//! feature files share lives in `support`; they never import each other.

mod accounts;
mod auth;
mod bad_input;
mod bills_biller;
mod bills_citizen;
mod bills_fees;
mod bills_pay;
mod bills_settlement;
mod callbacks;
mod cli;
mod console;
mod counters;
mod database;
mod demo;
mod design_client;
mod dossier_claims;
mod dossier_tracking;
mod dossiers;
mod errors;
mod hang_up;
mod layers;
mod ledger;
mod ledger_races;
mod merchant_keys;
mod merchants;
mod openapi;
mod operations;
mod operations_privacy;
mod password_bound;
mod payments;
mod pin_writes;
mod procedures;
mod receipts;
mod receipts_offline;
mod scorecards;
mod shutdown;
mod staff_reset;
mod support;
mod units;
mod wallet;
