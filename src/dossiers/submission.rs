//! Filing a dossier: online by a citizen (it starts `submitted`, unbilled until received), or at
//! a one-stop counter by an officer for a citizen or for an applicant without an account (it
//! starts `received`, its clock running, its fee billed if the procedure bills on receipt).
//! Codes are `{unit}-{yymmdd}-{NNNN}`, numbered per unit and Vietnam-time day by a counter row
//! locked in the filing transaction: no gaps, no duplicates.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::claims;
use super::reading::{DossierDetail, detail};
use super::{
    Actor, Channel, Delivery, DeliveryMethod, DocumentInput, DocumentStorage, Status,
    add_documents, bill_fee, check_documents, record_move,
};
use crate::auth::Caller;
use crate::auth::access::{Citizens, Officers, Role};
use crate::calendar::WorkingCalendar;
use crate::domain::{NationalId, Phone};
use crate::http::error::{FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json};
use crate::procedures::{self, FeeTiming, Procedure};
use crate::state::AppState;
use crate::units::UnitLevel;
use crate::vietnam_time::vietnam;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_online))
        .routes(routes!(receive_at_counter))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnlineSubmission {
    #[schema(example = "1.001193")]
    pub procedure_code: String,
    /// Any unit of the procedure's level; it handles the dossier.
    #[schema(example = "19753")]
    pub unit_code: String,
    /// At most 50.
    #[schema(max_items = 50)]
    pub documents: Vec<DocumentInput>,
    /// How the result reaches the applicant; without it, collected at the counter. `address`
    /// is required for `postal`.
    #[serde(default)]
    pub delivery: Delivery,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Applicant {
    /// Where the claim code is texted when the dossier cannot be attached to an account at once.
    /// The phone alone never attaches a dossier to the account that has it.
    #[schema(value_type = String, example = "0912345678", max_length = 32, pattern = r"^[ .()-]*(\+[ .()-]*8[ .()-]*4|8[ .()-]*4|0)[ .()-]*[35789]([ .()-]*[0-9]){8}[ .()-]*$")]
    pub phone: Phone,
    /// Required, as on the ID card: 1 to 200 characters once trimmed.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = r"\S")]
    pub full_name: Option<String>,
    /// 12-digit national ID number (căn cước), required. The dossier is attached at once to the
    /// account whose wallet is verified with it; otherwise to the one that verifies it later,
    /// or to the account of `phone` once it confirms the code texted to it (with this number).
    #[schema(value_type = String, required = true, example = "046095012345", pattern = "^(001|002|004|006|008|010|011|012|014|015|017|019|020|022|024|025|026|027|030|031|033|034|035|036|037|038|040|042|044|045|046|048|049|051|052|054|056|058|060|062|064|066|067|068|070|072|074|075|077|079|080|082|083|084|086|087|089|091|092|093|094|095|096)[0-9]{9}$")]
    pub national_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterSubmission {
    pub procedure_code: String,
    pub applicant: Applicant,
    /// At most 50.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub documents: Vec<DocumentInput>,
    /// How the result reaches the applicant; without it, collected at the counter. `address`
    /// is required for `postal`.
    #[serde(default)]
    pub delivery: Delivery,
}

/// Everything a new dossier row needs.
struct NewDossier<'a> {
    procedure: &'a Procedure,
    unit_code: &'a str,
    channel: Channel,
    applicant_id: Option<Uuid>,
    applicant_name: &'a str,
    applicant_phone: &'a str,
    national_id: Option<&'a str>,
    /// The recorded ID keyed as wallets key it: what a later verification finds the dossier by.
    national_id_hash: Option<&'a [u8]>,
    delivery: &'a Delivery,
    documents: &'a [DocumentInput],
    actor: Actor,
}

/// File a dossier online (citizens). It waits for an officer to receive it.
#[utoipa::path(post, path = "/v1/dossiers", tag = "dossiers", security(("bearer" = [])),
    request_body = OnlineSubmission,
    responses(
        (status = 201, body = DossierDetail),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Unknown procedure, a unit of another level, missing mandatory documents"),
    ))]
async fn submit_online(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Json(submission): Json<OnlineSubmission>,
) -> ApiResult<(StatusCode, Json<DossierDetail>)> {
    let mut tx = state.db.begin().await?;
    let procedure = check_filing(
        &mut tx,
        Filing {
            procedure_code: &submission.procedure_code,
            unit_code: &submission.unit_code,
            unit_field: "unit_code",
            delivery: &submission.delivery,
            documents: &submission.documents,
            storage: &state.dossiers.storage,
        },
    )
    .await?;
    let account = sqlx::query!(
        "SELECT full_name, phone FROM accounts WHERE id = $1",
        caller.account_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let calendar = WorkingCalendar::load(&mut tx).await?;
    let id = create(
        &mut tx,
        &calendar,
        NewDossier {
            procedure: &procedure,
            unit_code: &submission.unit_code,
            channel: Channel::Online,
            applicant_id: Some(caller.account_id),
            applicant_name: &account.full_name,
            applicant_phone: &account.phone,
            national_id: None,
            national_id_hash: None,
            delivery: &submission.delivery,
            documents: &submission.documents,
            actor: Actor::Account(caller.account_id, Role::Citizen),
        },
    )
    .await?;
    let created = detail(&mut tx, id, &caller, &calendar).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Receive a dossier at the counter (officers), at the officer's own unit. It is the account's
/// whose wallet is verified with the applicant's national ID; with none, it waits for that
/// verification, or for the account of the applicant's phone to confirm the code texted to it
/// now (`POST /v1/dossiers/claim`).
#[utoipa::path(post, path = "/v1/counter/dossiers", tag = "dossiers", security(("bearer" = [])),
    request_body = CounterSubmission,
    responses(
        (status = 201, body = DossierDetail),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Unknown procedure, missing documents, a missing applicant name or national ID, a malformed national ID"),
    ))]
async fn receive_at_counter(
    State(state): State<AppState>,
    caller: Caller<Officers>,
    Json(submission): Json<CounterSubmission>,
) -> ApiResult<(StatusCode, Json<DossierDetail>)> {
    // The database gives every officer a unit.
    let unit_code = caller
        .unit_code
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::Forbidden))?;
    let mut tx = state.db.begin().await?;
    // The officer's own unit: a mismatch is the procedure's (another level's) fault.
    let procedure = check_filing(
        &mut tx,
        Filing {
            procedure_code: &submission.procedure_code,
            unit_code: &unit_code,
            unit_field: "procedure_code",
            delivery: &submission.delivery,
            documents: &submission.documents,
            storage: &state.dossiers.storage,
        },
    )
    .await?;
    let applicant = &submission.applicant;
    let (applicant_name, national_id) = check_applicant(applicant)?;
    // Attached at once only to the account verified with this very ID, never by the phone
    // (a typo is a stranger's). Under the lock a verification of this ID takes too, so a
    // verification committing just before is seen here, and one just after sees this dossier.
    let national_id_hash = national_id.keyed(state.wallet.pepper());
    claims::lock_identity(&mut tx, &national_id_hash).await?;
    let applicant_id = claims::verified_holder(&mut tx, &national_id_hash).await?;
    let calendar = WorkingCalendar::load(&mut tx).await?;
    let id = create(
        &mut tx,
        &calendar,
        NewDossier {
            procedure: &procedure,
            unit_code: &unit_code,
            channel: Channel::Counter,
            applicant_id,
            applicant_name: &applicant_name,
            applicant_phone: applicant.phone.as_str(),
            national_id: Some(national_id.as_str()),
            national_id_hash: Some(&national_id_hash),
            delivery: &submission.delivery,
            documents: &submission.documents,
            actor: Actor::Account(caller.account_id, Role::Officer),
        },
    )
    .await?;
    if procedure.fee_timing == FeeTiming::OnReceipt {
        bill_fee(&mut tx, id, &procedure, state.dossiers.postal_delivery_fee).await?;
    }
    // Not attached: the applicant may claim it with a code texted to the phone they gave.
    let claim_code = match applicant_id {
        Some(_) => None,
        None => claims::issue_code(&mut tx, &state.auth, id).await?,
    };
    let created = detail(&mut tx, id, &caller, &calendar).await?;
    tx.commit().await?;
    if let Some(code) = claim_code {
        claims::send_code(&state.auth, &applicant.phone, &code).await;
    }
    Ok((StatusCode::CREATED, Json(created)))
}

/// The applicant's name, trimmed, and national ID, or 422 naming every one missing or
/// malformed.
fn check_applicant(applicant: &Applicant) -> ApiResult<(String, NationalId)> {
    let applicant_name = applicant
        .full_name
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_owned();
    let mut checks = FieldChecks::new().check(
        length_within(&applicant_name, 1, 200),
        "applicant.full_name",
        Message::TextLength { min: 1, max: 200 },
    );
    let national_id = match applicant.national_id.as_deref() {
        Some(text) => checks.parse(
            NationalId::parse(text),
            "applicant.national_id",
            Message::NationalIdMalformed,
        ),
        None => checks.parse(None, "applicant.national_id", Message::FieldRequired),
    };
    let national_id = checks.finish_with(national_id)?;
    Ok((applicant_name, national_id))
}

/// What every filing must satisfy, wherever it is made.
struct Filing<'a> {
    procedure_code: &'a str,
    unit_code: &'a str,
    /// The field to blame when the unit is not of the procedure's level.
    unit_field: &'a str,
    delivery: &'a Delivery,
    documents: &'a [DocumentInput],
    /// Where the documents must be kept.
    storage: &'a DocumentStorage,
}

/// The procedure, once the filing fits it: a known procedure, a unit of its level, a way to
/// deliver the result, well-formed documents with every mandatory one.
async fn check_filing(conn: &mut PgConnection, filing: Filing<'_>) -> ApiResult<Procedure> {
    let procedure = procedures::load(conn, filing.procedure_code)
        .await?
        .ok_or_else(|| {
            ApiError::invalid_field("procedure_code", Message::ReferencedObjectMissing)
        })?;
    let unit_level = sqlx::query_scalar!(
        r#"SELECT level AS "level: UnitLevel" FROM units WHERE code = $1"#,
        filing.unit_code
    )
    .fetch_optional(&mut *conn)
    .await?;
    if unit_level != Some(procedure.level) {
        return Err(ApiError::invalid_field(
            filing.unit_field,
            Message::UnitNotOfProcedureLevel,
        ));
    }
    check_delivery(filing.delivery)?;
    check_documents(filing.documents, "documents", filing.storage)?;
    check_required_documents(&procedure, filing.documents)?;
    Ok(procedure)
}

/// A postal delivery needs its address (422 `delivery.address` when missing or not 5–500
/// characters); a counter delivery has none.
fn check_delivery(delivery: &Delivery) -> ApiResult<()> {
    let address = delivery.address.as_deref();
    let (valid, message) = match delivery.method {
        DeliveryMethod::Counter => (address.is_none(), Message::FieldInvalidValue),
        DeliveryMethod::Postal => match address {
            None => (false, Message::FieldRequired),
            Some(a) => (
                length_within(a, 5, 500),
                Message::TextLength { min: 5, max: 500 },
            ),
        },
    };
    FieldChecks::new()
        .check(valid, "delivery.address", message)
        .finish()
}

/// Every mandatory document present, and no document claiming a requirement the procedure
/// does not have.
fn check_required_documents(procedure: &Procedure, documents: &[DocumentInput]) -> ApiResult<()> {
    let given = |code: &str| documents.iter().any(|d| d.code.as_deref() == Some(code));
    let missing: Vec<&str> = procedure
        .mandatory_documents()
        .filter(|required| !given(&required.code))
        .map(|required| required.code.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::invalid_field(
            "documents",
            Message::MissingDocuments {
                codes: missing.join(", "),
            },
        )
        .with_extra("missing_documents", missing));
    }
    let unknown = documents
        .iter()
        .filter_map(|d| d.code.as_deref())
        .any(|code| {
            !procedure
                .required_documents
                .iter()
                .any(|required| required.code == code)
        });
    FieldChecks::new()
        .check(!unknown, "documents", Message::FieldInvalidValue)
        .finish()
}

async fn create(
    conn: &mut PgConnection,
    calendar: &WorkingCalendar,
    new: NewDossier<'_>,
) -> ApiResult<Uuid> {
    let now = Utc::now();
    let code = next_code(conn, new.unit_code, now).await?;
    let (status, received_at, due_at) = match new.channel {
        Channel::Online => (Status::Submitted, None, None),
        Channel::Counter => {
            let due = calendar.due_at(now, new.procedure.processing_time());
            (Status::Received, Some(now), Some(due))
        }
    };
    let id = Uuid::new_v4();
    sqlx::query!(
        r#"WITH RECURSIVE upward(code, parent_code) AS (
               SELECT code, parent_code FROM units WHERE code = $4
               UNION ALL
               SELECT u.code, u.parent_code FROM units u JOIN upward ON u.code = upward.parent_code
           )
           INSERT INTO dossiers (id, code, procedure_code, unit_code, province_code, status, channel, applicant_id,
                                 applicant_name, applicant_phone, applicant_national_id, result_delivery,
                                 postal_address, submitted_at, received_at, due_at, appointment_at, tracking_key,
                                 applicant_national_id_hash)
           SELECT $1, $2, $3, $4, upward.code, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16, $17
           FROM upward WHERE upward.parent_code IS NULL"#,
        id,
        code,
        new.procedure.code,
        new.unit_code,
        status as Status,
        new.channel as Channel,
        new.applicant_id,
        new.applicant_name.trim(),
        new.applicant_phone,
        new.national_id,
        new.delivery.method as DeliveryMethod,
        new.delivery.address.as_deref().map(str::trim),
        now,
        received_at,
        due_at,
        new_tracking_key(),
        new.national_id_hash,
    )
    .execute(&mut *conn)
    .await?;
    let action = match new.channel {
        Channel::Online => "submit",
        Channel::Counter => "receive_at_counter",
    };
    let added_by = match new.actor {
        Actor::Account(id, _) => Some(id),
        Actor::System => None,
    };
    add_documents(conn, id, new.documents, action, added_by).await?;
    record_move(conn, id, action, None, status, new.actor, None, None).await?;
    Ok(id)
}

/// The characters of a tracking key: no 0/O and no 1/I/L, which a printed slip and a person
/// typing it would confuse. The migration's `dossier_tracking_key()` uses the same alphabet.
const TRACKING_KEY_ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const TRACKING_KEY_LEN: usize = 6;

/// A fresh tracking key from the operating system's CSPRNG: about 30 bits, each character
/// equally likely (bytes of 248 and above, 8 × 31, are drawn again rather than folded in).
fn new_tracking_key() -> String {
    let alphabet_len = TRACKING_KEY_ALPHABET.len() as u8;
    let unbiased_below = u8::MAX - u8::MAX % alphabet_len;
    let mut key = String::with_capacity(TRACKING_KEY_LEN);
    let mut bytes = [0u8; 16];
    while key.len() < TRACKING_KEY_LEN {
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        for byte in bytes.iter().filter(|&&b| b < unbiased_below) {
            if key.len() == TRACKING_KEY_LEN {
                break;
            }
            key.push(char::from(
                TRACKING_KEY_ALPHABET[usize::from(byte % alphabet_len)],
            ));
        }
    }
    key
}

/// The next code of the unit's Vietnam-time day; the counter row stays locked until the
/// filing transaction ends, so a rolled-back filing gives its number back.
async fn next_code(
    conn: &mut PgConnection,
    unit_code: &str,
    now: DateTime<Utc>,
) -> ApiResult<String> {
    let day = now.with_timezone(&vietnam()).date_naive();
    let number = sqlx::query_scalar!(
        "INSERT INTO dossier_counters (unit_code, day, last) VALUES ($1, $2, 1)
         ON CONFLICT (unit_code, day) DO UPDATE SET last = dossier_counters.last + 1
         RETURNING last",
        unit_code,
        day,
    )
    .fetch_one(conn)
    .await?;
    Ok(format!("{unit_code}-{}-{number:04}", day.format("%y%m%d")))
}

#[cfg(test)]
mod tracking_key_tests {
    use super::{TRACKING_KEY_ALPHABET, TRACKING_KEY_LEN, new_tracking_key};
    use std::collections::HashSet;

    #[test]
    fn tracking_keys_are_six_unambiguous_characters_and_all_of_them_occur() {
        let mut seen = HashSet::new();
        let mut keys = HashSet::new();
        for _ in 0..100 {
            let key = new_tracking_key();
            assert_eq!(key.len(), TRACKING_KEY_LEN);
            assert!(
                key.bytes().all(|b| TRACKING_KEY_ALPHABET.contains(&b)),
                "{key}"
            );
            seen.extend(key.bytes());
            keys.insert(key);
        }
        assert_eq!(seen.len(), TRACKING_KEY_ALPHABET.len());
        // 100 draws from 31^6 ≈ 887 million (a repeat by chance: about 1 in 180,000), and 600
        // characters that miss none of the 31.
        assert_eq!(keys.len(), 100);
        for ambiguous in *b"0O1IL" {
            assert!(!TRACKING_KEY_ALPHABET.contains(&ambiguous));
        }
    }
}
