//! Passwords: argon2id PHC strings for storage, and the policy a new password must meet.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::token::os_random;
use crate::AuthError;

/// Fewest characters (not bytes) a password may have.
pub const PASSWORD_MIN_CHARS: usize = 10;
/// Most characters a password may have; bounds the work argon2 does on hostile input.
pub const PASSWORD_MAX_CHARS: usize = 256;

/// Hashes `plain` with argon2id (the crate's defaults, m=19456 KiB, t=2, p=1) and a fresh 16-byte salt.
/// The result is a self-describing PHC string, so stored hashes keep verifying if the defaults change.
pub fn hash_password(plain: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&os_random::<16>()).map_err(|_| AuthError::PasswordHashFailed)?;
    Argon2::default()
        .hash_password(plain.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| AuthError::PasswordHashFailed)
}

/// Whether `plain` matches the PHC string `phc`. A malformed or unsupported hash is simply not a match:
/// the caller answers "wrong user name or password" either way.
pub fn verify_password(plain: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(plain.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Checks a new password: 10 to 256 characters, not one character repeated, and at least two of the
/// classes letters (any script), ASCII digits and everything else.
pub fn check_password_policy(plain: &str) -> Result<(), AuthError> {
    let count = plain.chars().count();
    if count < PASSWORD_MIN_CHARS {
        return Err(AuthError::PasswordTooShort);
    }
    if count > PASSWORD_MAX_CHARS {
        return Err(AuthError::PasswordTooLong);
    }
    let mut chars = plain.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return Err(AuthError::PasswordRepetitive);
        }
    }
    let letters = plain.chars().any(char::is_alphabetic);
    let digits = plain.chars().any(|c| c.is_ascii_digit());
    let other = plain.chars().any(|c| !c.is_alphabetic() && !c.is_ascii_digit());
    if [letters, digits, other].into_iter().filter(|&present| present).count() < 2 {
        return Err(AuthError::PasswordTooWeak);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify_round_trips_and_rejects_a_wrong_password() {
        let phc = hash_password("correct horse 42").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(phc.contains("m=19456,t=2,p=1"), "{phc}");
        assert!(verify_password("correct horse 42", &phc));
        assert!(!verify_password("correct horse 43", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        let a = hash_password("同一个密码 2024").unwrap();
        let b = hash_password("同一个密码 2024").unwrap();
        assert_ne!(a, b);
        assert!(verify_password("同一个密码 2024", &a) && verify_password("同一个密码 2024", &b));
    }

    #[test]
    fn malformed_hashes_never_verify() {
        for phc in
            ["", "plain text", "$argon2id$", "$argon2id$v=19$m=19456,t=2,p=1$bad", "$2b$12$abcdefghijk"]
        {
            assert!(!verify_password("anything", phc), "{phc:?}");
        }
    }

    fn check(plain: &str, expected: Result<(), AuthError>) {
        assert_eq!(check_password_policy(plain), expected, "{plain:?}");
    }

    #[test]
    fn policy() {
        let long_ok = format!("{}1", "a".repeat(255));
        let too_long = format!("{}1", "a".repeat(256));
        let table: Vec<(&str, Result<(), AuthError>)> = vec![
            ("", Err(AuthError::PasswordTooShort)),
            ("abc12345", Err(AuthError::PasswordTooShort)),
            ("abcd12345", Err(AuthError::PasswordTooShort)),
            ("abcde12345", Ok(())),
            ("密码密码密码密码12", Ok(())),
            ("aaaaaaaaaa", Err(AuthError::PasswordRepetitive)),
            ("1111111111111", Err(AuthError::PasswordRepetitive)),
            ("abcdefghijkl", Err(AuthError::PasswordTooWeak)),
            ("1234567890", Err(AuthError::PasswordTooWeak)),
            ("!@#$%^&*()_+", Err(AuthError::PasswordTooWeak)),
            ("我爱我的城市南通市民", Err(AuthError::PasswordTooWeak)),
            ("abcdefghij!", Ok(())),
            ("1234567890!", Ok(())),
            ("correct horse", Ok(())),
            (long_ok.as_str(), Ok(())),
            (too_long.as_str(), Err(AuthError::PasswordTooLong)),
        ];
        for (plain, expected) in table {
            check(plain, expected);
        }
    }
}
