//! Credentials and personal data: password hashing, random tokens, sealing personal data at rest (PIPL) and
//! masking it for display. Pure functions and an in-memory key ring; no IO, no clock.

mod error;
pub mod mask;
pub mod password;
pub mod seal;
pub mod token;

pub use error::AuthError;
pub use mask::{is_valid_id_number, is_valid_mobile, mask_id_number, mask_name, mask_phone};
pub use password::{check_password_policy, hash_password, verify_password};
pub use seal::Sealer;
pub use token::{constant_time_eq, hmac_sha256_hex, random_token, sha256_hex, token_hash, tracking_code};
