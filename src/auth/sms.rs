//! Sending one-time codes by SMS. [`SmsSender`] is the seam for a real gateway (a Vietnamese
//! brandname-SMS provider, say): implement `send` to deliver or fail, select it in
//! `AuthState::new` from `CIVICPAY_SMS_PROVIDER`, and never log the text (it holds a code).
//! Only the sandbox exists now; production starts with SMS disabled rather than pretend. The
//! sandbox's read-back route is with the other handlers (`auth::handlers`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::domain::Phone;

pub trait SmsSender: Send + Sync {
    /// Delivers `text` to `phone`; an error means it was not sent.
    fn send<'a>(&'a self, phone: &'a Phone, text: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// Messages kept per phone by the sandbox.
const KEPT_PER_PHONE: usize = 10;

/// Development only: keeps the last messages per phone in memory instead of sending them.
#[derive(Default)]
pub struct SandboxSms {
    outbox: Mutex<HashMap<String, VecDeque<SentSms>>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SentSms {
    pub text: String,
    pub sent_at: DateTime<Utc>,
}

impl SmsSender for SandboxSms {
    fn send<'a>(&'a self, phone: &'a Phone, text: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        let mut outbox = self
            .outbox
            .lock()
            .expect("the sandbox outbox lock is never poisoned");
        let messages = outbox.entry(phone.as_str().to_owned()).or_default();
        messages.push_front(SentSms {
            text: text.to_owned(),
            sent_at: Utc::now(),
        });
        messages.truncate(KEPT_PER_PHONE);
        Box::pin(async { Ok(()) })
    }
}

impl SandboxSms {
    pub fn messages(&self, phone: &Phone) -> Vec<SentSms> {
        let outbox = self
            .outbox
            .lock()
            .expect("the sandbox outbox lock is never poisoned");
        outbox
            .get(phone.as_str())
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }
}
