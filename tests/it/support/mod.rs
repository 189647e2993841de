//! What the feature tests share: the app they talk to, the people who use it, the requests they
//! make and the checks every answer gets. Feature test files import from here and never from
//! each other, so each one reads (and changes) on its own.

pub mod actors;
pub mod app;
pub mod database;
pub mod demo;
pub mod desk;
pub mod ledger;
pub mod metrics;
pub mod problems;
pub mod receiver;
pub mod requests;
pub mod workers;
