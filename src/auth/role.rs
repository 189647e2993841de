//! Who a caller is to civicpay. Its own file, below both the access checks and the tokens
//! that carry it, so neither has to reach into the other for it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Role {
    Citizen,
    /// Works at a one-stop counter of one unit.
    Officer,
    /// Watches deadlines and scorecards of a unit's subtree.
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::Officer => "officer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn is_staff(self) -> bool {
        self != Role::Citizen
    }
}
