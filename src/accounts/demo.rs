//! Demo accounts, with the passwords the README lists. Only inserted when the phone is free.

use sqlx::PgConnection;

use crate::auth::{Role, password};
use crate::domain::Phone;

/// (phone, password, full name, role, unit)
pub const ACCOUNTS: &[(&str, &str, &str, Role, Option<&str>)] = &[
    (
        "0900000001",
        "admin-demo-2026",
        "Quản trị Hệ thống",
        Role::Admin,
        None,
    ),
    (
        "0900000002",
        "officer-demo-2026",
        "Trần Thị Bích",
        Role::Officer,
        Some("19753"),
    ),
    (
        "0900000003",
        "officer-demo-2026",
        "Lê Văn Cường",
        Role::Officer,
        Some("19789"),
    ),
    (
        "0900000004",
        "supervisor-demo-2026",
        "Phạm Minh Đức",
        Role::Supervisor,
        Some("46"),
    ),
    (
        "0912345678",
        "citizen-demo-2026",
        "Nguyễn Văn An",
        Role::Citizen,
        None,
    ),
    (
        "0987654321",
        "citizen-demo-2026",
        "Hoàng Thị Mai",
        Role::Citizen,
        None,
    ),
];

pub async fn load(conn: &mut PgConnection) -> anyhow::Result<()> {
    for (phone, secret, full_name, role, unit) in ACCOUNTS {
        let phone = Phone::parse(phone).expect("demo phones are valid");
        let exists = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM accounts WHERE phone = $1) AS "exists!""#,
            phone.as_str()
        )
        .fetch_one(&mut *conn)
        .await?;
        if exists {
            continue;
        }
        let password_hash = password::Hasher::standalone()
            .hash((*secret).to_owned())
            .await?;
        sqlx::query!(
            "INSERT INTO accounts (id, phone, full_name, password_hash, role, unit_code)
             VALUES ($1, $2, $3, $4, $5, $6)",
            uuid::Uuid::new_v4(),
            phone.as_str(),
            full_name,
            password_hash,
            *role as Role,
            *unit,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
