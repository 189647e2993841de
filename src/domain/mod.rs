//! Validated domain types, parsed once at the edge and trusted from then on: a value of one of
//! these types cannot be invalid. They depend on nothing of the product's features, so every
//! feature (and the HTTP plumbing's messages) may use them.

pub mod money;
pub mod names;
pub mod national_id;
pub mod phone;

pub use money::Money;
pub use names::masked_name;
pub use national_id::NationalId;
pub use phone::Phone;
