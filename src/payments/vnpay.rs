//! VNPay 2.1.0 as DESIGN.md specifies it. Every signed message is HMAC-SHA512, keyed with the
//! merchant's hash secret, over the `vnp_*` parameters without empty values and without the
//! hash fields, sorted by name and joined as `name=value&…` with values URL-encoded the way
//! HTML forms are (`+` for a space); `vnp_Amount` is the amount × 100. The IPN is a GET answered
//! `{"RspCode", "Message"}`; `querydr` asks for a payment's status. VNPay pays nothing out.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::Sha512;
use sqlx::PgPool;

use crate::crypto::random_token;
use crate::payments::provider::{
    Notification, Outcome, PaymentRequest, Payout, PayoutResult, Provider, ProviderStatus,
    RawRequest, Unreadable, hex, unhex, unique_params,
};
use crate::vietnam_time::vietnam;

pub struct VnPay {
    tmn_code: String,
    secret: String,
    pay_url: String,
    api_url: String,
    client: reqwest::Client,
}

impl VnPay {
    pub fn new(tmn_code: &str, secret: &str, pay_url: &str, api_url: &str) -> Self {
        VnPay {
            tmn_code: tmn_code.to_owned(),
            secret: secret.to_owned(),
            pay_url: pay_url.to_owned(),
            api_url: api_url.to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("the HTTP client's fixed settings are valid"),
        }
    }

    fn mac(&self, data: &str) -> Hmac<Sha512> {
        let mut mac =
            Hmac::<Sha512>::new_from_slice(self.secret.as_bytes()).expect("HMAC takes any key");
        mac.update(data.as_bytes());
        mac
    }

    fn sign(&self, data: &str) -> String {
        hex(&self.mac(data).finalize().into_bytes())
    }
}

/// `yyyyMMddHHmmss` in Vietnam time, as VNPay writes dates.
pub fn vnpay_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&vietnam())
        .format("%Y%m%d%H%M%S")
        .to_string()
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The signed string: sorted, non-empty `vnp_*` fields but the hash ones, form-encoded.
pub fn sign_data<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let sorted: BTreeMap<&str, &str> = params
        .into_iter()
        .filter(|(key, value)| {
            key.starts_with("vnp_")
                && !value.is_empty()
                && *key != "vnp_SecureHash"
                && *key != "vnp_SecureHashType"
        })
        .collect();
    sorted
        .iter()
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// VNPay's payment page takes a payment for this long after the URL is made
/// (`vnp_ExpireDate`).
const PAYMENT_WINDOW_MINUTES: i64 = 15;

impl Provider for VnPay {
    fn name(&self) -> &'static str {
        "vnpay"
    }

    fn payment_window(&self) -> chrono::Duration {
        chrono::Duration::minutes(PAYMENT_WINDOW_MINUTES)
    }

    fn payment_url(&self, request: &PaymentRequest<'_>) -> String {
        let amount = (request.amount * 100).to_string();
        let created = vnpay_time(request.created_at);
        let expires = vnpay_time(request.created_at + self.payment_window());
        let info = format!("Nap tien vi civicpay {}", request.reference);
        let params = [
            ("vnp_Version", "2.1.0"),
            ("vnp_Command", "pay"),
            ("vnp_TmnCode", self.tmn_code.as_str()),
            ("vnp_Amount", amount.as_str()),
            ("vnp_CurrCode", "VND"),
            ("vnp_TxnRef", request.reference),
            ("vnp_OrderInfo", info.as_str()),
            ("vnp_OrderType", "other"),
            ("vnp_Locale", "vn"),
            ("vnp_ReturnUrl", request.return_url),
            ("vnp_IpAddr", request.client_ip),
            ("vnp_CreateDate", created.as_str()),
            ("vnp_ExpireDate", expires.as_str()),
        ];
        let data = sign_data(params);
        format!(
            "{}?{data}&vnp_SecureHash={}",
            self.pay_url,
            self.sign(&data)
        )
    }

    fn read_notification(&self, raw: &RawRequest) -> Result<Notification, Unreadable> {
        let mut params = unique_params(&raw.query)?;
        // Empty values are not signed, so they are not read either: every field read is one
        // the signature covers.
        params.retain(|_, value| !value.is_empty());
        let field = |name: &str| params.get(name).map(String::as_str);
        let signature = field("vnp_SecureHash")
            .and_then(|h| unhex(&h.to_ascii_lowercase()))
            .ok_or(Unreadable::BadSignature)?;
        let data = sign_data(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // Constant time.
        self.mac(&data)
            .verify_slice(&signature)
            .map_err(|_| Unreadable::BadSignature)?;
        if field("vnp_CurrCode").is_some_and(|currency| currency != "VND") {
            return Err(Unreadable::Malformed);
        }
        let amount = field("vnp_Amount")
            .and_then(|a| a.parse::<i64>().ok())
            .filter(|a| *a > 0 && a % 100 == 0)
            .ok_or(Unreadable::Malformed)?;
        let reference = field("vnp_TxnRef").ok_or(Unreadable::Malformed)?;
        let succeeded = field("vnp_ResponseCode") == Some("00")
            && field("vnp_TransactionStatus").is_none_or(|status| status == "00");
        Ok(Notification {
            reference: reference.to_owned(),
            transaction_id: field("vnp_TransactionNo").unwrap_or_default().to_owned(),
            amount: amount / 100,
            succeeded,
        })
    }

    fn answer(&self, outcome: Outcome) -> Response {
        let (code, message) = match outcome {
            Outcome::Confirmed => ("00", "Confirm Success"),
            Outcome::OrderNotFound => ("01", "Order not found"),
            Outcome::AlreadyConfirmed => ("02", "Order already confirmed"),
            Outcome::InvalidAmount => ("04", "invalid amount"),
            Outcome::InvalidSignature => ("97", "Invalid signature"),
            Outcome::Malformed | Outcome::Failed => ("99", "Unknow error"),
        };
        Json(serde_json::json!({"RspCode": code, "Message": message})).into_response()
    }

    fn query<'a>(
        &'a self,
        _db: &'a PgPool,
        reference: &'a str,
        created_at: DateTime<Utc>,
    ) -> BoxFuture<'a, anyhow::Result<ProviderStatus>> {
        Box::pin(async move {
            let request_id = random_token();
            let now = vnpay_time(Utc::now());
            let transaction_date = vnpay_time(created_at);
            let info = format!("Truy van giao dich {reference}");
            let fields = [
                request_id.as_str(),
                "2.1.0",
                "querydr",
                self.tmn_code.as_str(),
                reference,
                transaction_date.as_str(),
                now.as_str(),
                "127.0.0.1",
                info.as_str(),
            ];
            let body = serde_json::json!({
                "vnp_RequestId": request_id, "vnp_Version": "2.1.0", "vnp_Command": "querydr",
                "vnp_TmnCode": self.tmn_code, "vnp_TxnRef": reference, "vnp_OrderInfo": info,
                "vnp_TransactionDate": transaction_date, "vnp_CreateDate": now,
                "vnp_IpAddr": "127.0.0.1", "vnp_SecureHash": self.sign(&fields.join("|")),
            });
            let answer: serde_json::Value = self
                .client
                .post(&self.api_url)
                .json(&body)
                .send()
                .await?
                .json()
                .await?;
            self.read_query_answer(&answer)
        })
    }

    fn pays_out(&self) -> bool {
        false
    }

    fn payout<'a>(
        &'a self,
        _db: &'a PgPool,
        _payout: &'a Payout<'a>,
    ) -> BoxFuture<'a, anyhow::Result<PayoutResult>> {
        Box::pin(async { anyhow::bail!("VNPay pays nothing out") })
    }
}

impl VnPay {
    /// A `querydr` answer, its signature checked (the fields VNPay signs, `|`-joined).
    fn read_query_answer(&self, answer: &serde_json::Value) -> anyhow::Result<ProviderStatus> {
        let field = |name: &str| answer[name].as_str().unwrap_or_default().to_owned();
        let signed = [
            "vnp_ResponseId",
            "vnp_Command",
            "vnp_ResponseCode",
            "vnp_Message",
            "vnp_TmnCode",
            "vnp_TxnRef",
            "vnp_Amount",
            "vnp_BankCode",
            "vnp_PayDate",
            "vnp_TransactionNo",
            "vnp_TransactionType",
            "vnp_TransactionStatus",
            "vnp_OrderInfo",
            "vnp_PromotionCode",
            "vnp_PromotionAmount",
        ]
        .map(field)
        .join("|");
        let signature = unhex(&field("vnp_SecureHash").to_ascii_lowercase())
            .ok_or_else(|| anyhow::anyhow!("querydr answer without a signature"))?;
        self.mac(&signed)
            .verify_slice(&signature)
            .map_err(|_| anyhow::anyhow!("querydr answer with a wrong signature"))?;
        let amount = field("vnp_Amount").parse::<i64>().unwrap_or(0) / 100;
        let transaction_id = field("vnp_TransactionNo");
        Ok(
            match (
                field("vnp_ResponseCode").as_str(),
                field("vnp_TransactionStatus").as_str(),
            ) {
                ("00", "00") => ProviderStatus::Succeeded {
                    transaction_id,
                    amount,
                },
                // 01 not finished; 04 reversed (the customer was debited at the bank, VNPay has
                // not completed it); 07 held as suspected fraud. None is final: the money may
                // still arrive, so the top-up stays pending rather than failing for good.
                ("00", "01" | "04" | "07") | ("91", _) => ProviderStatus::Pending,
                ("00", _) => ProviderStatus::Failed { transaction_id },
                (code, _) => anyhow::bail!("querydr answered {code}"),
            },
        )
    }
}
