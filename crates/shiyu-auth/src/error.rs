//! The one error type of this crate: a stable code for machines and a message in Chinese and English for
//! people. `Display` adds detail for logs; it never contains a password, a key or sealed plaintext.

/// Everything that can go wrong in `shiyu-auth`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("password is shorter than {min} characters", min = crate::password::PASSWORD_MIN_CHARS)]
    PasswordTooShort,
    #[error("password is longer than {max} characters", max = crate::password::PASSWORD_MAX_CHARS)]
    PasswordTooLong,
    #[error("password repeats a single character")]
    PasswordRepetitive,
    #[error("password uses fewer than two kinds of characters (letters, digits, other)")]
    PasswordTooWeak,
    #[error("argon2 could not hash the password")]
    PasswordHashFailed,
    #[error("no sealing key is configured")]
    KeyMissing,
    // The offending id is not echoed: a key pasted into the id field would otherwise end up in the logs.
    #[error("a sealing key id is not 1-16 characters of [a-z0-9_-]")]
    KeyIdInvalid,
    #[error("sealing key id {key_id:?} is configured twice")]
    KeyIdDuplicate { key_id: String },
    #[error("sealing key {key_id:?} is not base64 of exactly 32 bytes")]
    KeyInvalid { key_id: String },
    #[error("sealed value names key id {key_id:?}, which is not configured")]
    UnknownKeyId { key_id: String },
    #[error("value to seal is longer than {max} bytes", max = crate::seal::MAX_SEAL_BYTES)]
    SealInputTooLong,
    #[error("sealed value is not in the form v1.<key id>.<base64url>")]
    SealedDataMalformed,
    #[error("sealed value failed authentication: it was altered or sealed with another key")]
    SealedDataInvalid,
}

impl AuthError {
    /// A stable identifier for API clients and logs; never changes once released.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::PasswordTooShort => "PASSWORD_TOO_SHORT",
            AuthError::PasswordTooLong => "PASSWORD_TOO_LONG",
            AuthError::PasswordRepetitive => "PASSWORD_REPETITIVE",
            AuthError::PasswordTooWeak => "PASSWORD_TOO_WEAK",
            AuthError::PasswordHashFailed => "PASSWORD_HASH_FAILED",
            AuthError::KeyMissing => "KEY_MISSING",
            AuthError::KeyIdInvalid => "KEY_ID_INVALID",
            AuthError::KeyIdDuplicate { .. } => "KEY_ID_DUPLICATE",
            AuthError::KeyInvalid { .. } => "KEY_INVALID",
            AuthError::UnknownKeyId { .. } => "UNKNOWN_KEY_ID",
            AuthError::SealInputTooLong => "SEAL_INPUT_TOO_LONG",
            AuthError::SealedDataMalformed => "SEALED_DATA_MALFORMED",
            AuthError::SealedDataInvalid => "SEALED_DATA_INVALID",
        }
    }

    pub fn message_zh(&self) -> &'static str {
        match self {
            AuthError::PasswordTooShort => "密码至少需要10个字符",
            AuthError::PasswordTooLong => "密码不能超过256个字符",
            AuthError::PasswordRepetitive => "密码不能由同一个字符重复组成",
            AuthError::PasswordTooWeak => "密码须至少包含字母、数字、其他符号中的两类",
            AuthError::PasswordHashFailed => "密码处理失败，请稍后重试",
            AuthError::KeyMissing => "未配置个人信息加密密钥",
            AuthError::KeyIdInvalid => "加密密钥编号须为1到16位小写字母、数字、下划线或连字符",
            AuthError::KeyIdDuplicate { .. } => "加密密钥编号重复",
            AuthError::KeyInvalid { .. } => "加密密钥须为32字节数据的Base64编码",
            AuthError::UnknownKeyId { .. } => "加密数据所用的密钥未配置",
            AuthError::SealInputTooLong => "待加密的内容过长",
            AuthError::SealedDataMalformed => "加密数据格式不正确",
            AuthError::SealedDataInvalid => "加密数据校验失败，可能已被篡改",
        }
    }

    pub fn message_en(&self) -> &'static str {
        match self {
            AuthError::PasswordTooShort => "The password must be at least 10 characters long",
            AuthError::PasswordTooLong => "The password must be at most 256 characters long",
            AuthError::PasswordRepetitive => "The password must not repeat a single character",
            AuthError::PasswordTooWeak => {
                "The password must contain at least two of: letters, digits, other characters"
            }
            AuthError::PasswordHashFailed => "The password could not be processed; try again later",
            AuthError::KeyMissing => "No key for personal data is configured",
            AuthError::KeyIdInvalid => "A key id must be 1 to 16 characters of a-z, 0-9, '_' or '-'",
            AuthError::KeyIdDuplicate { .. } => "A key id is configured twice",
            AuthError::KeyInvalid { .. } => "A key must be the base64 encoding of exactly 32 bytes",
            AuthError::UnknownKeyId { .. } => "The data was sealed with a key that is not configured",
            AuthError::SealInputTooLong => "The value to seal is too long",
            AuthError::SealedDataMalformed => "The sealed data is malformed",
            AuthError::SealedDataInvalid => "The sealed data failed verification and may have been altered",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn every_variant() -> Vec<AuthError> {
        let id = || "k1".to_owned();
        vec![
            AuthError::PasswordTooShort,
            AuthError::PasswordTooLong,
            AuthError::PasswordRepetitive,
            AuthError::PasswordTooWeak,
            AuthError::PasswordHashFailed,
            AuthError::KeyMissing,
            AuthError::KeyIdInvalid,
            AuthError::KeyIdDuplicate { key_id: id() },
            AuthError::KeyInvalid { key_id: id() },
            AuthError::UnknownKeyId { key_id: id() },
            AuthError::SealInputTooLong,
            AuthError::SealedDataMalformed,
            AuthError::SealedDataInvalid,
        ]
    }

    #[test]
    fn codes_are_unique_and_every_variant_speaks_both_languages() {
        let mut codes = HashSet::new();
        for err in every_variant() {
            assert!(codes.insert(err.code()), "duplicate code {}", err.code());
            assert!(err.code().chars().all(|c| c.is_ascii_uppercase() || c == '_'));
            assert!(err.message_zh().chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
            assert!(err.message_en().is_ascii());
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn display_fills_in_the_limits() {
        assert_eq!(AuthError::PasswordTooShort.to_string(), "password is shorter than 10 characters");
        assert_eq!(AuthError::PasswordTooLong.to_string(), "password is longer than 256 characters");
    }
}
