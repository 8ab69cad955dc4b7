//! Personal data at rest (PIPL): ID numbers, phones and the like are stored sealed with AES-256-GCM under a
//! named key, so that keys can be rotated while old values stay readable.

use std::fmt;

use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

use crate::token::os_random;
use crate::AuthError;

/// Largest plaintext `seal` accepts. Sealed fields are short personal data; the bound keeps a mistaken
/// caller from sealing a document and keeps far away from AES-GCM's own limit of 64 GiB per message.
pub const MAX_SEAL_BYTES: usize = 1 << 20;

const FORMAT_VERSION: &str = "v1";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

struct SealKey {
    id: String,
    cipher: Aes256Gcm,
}

/// Seals and opens personal data with a ring of named AES-256-GCM keys: one current key that seals, and
/// older keys that only open, so a rotation can re-seal old values at its own pace.
///
/// A sealed value reads `v1.<key id>.<base64url(nonce || ciphertext || tag)>`. The `v1.<key id>` prefix is
/// the associated data, so a value cannot be relabelled to another key or format without failing to open.
pub struct Sealer {
    current: SealKey,
    older: Vec<SealKey>,
}

impl Sealer {
    /// Builds the key ring from `(key id, base64 of 32 bytes)` pairs; the first pair is the current key.
    /// Key ids are 1-16 characters of `[a-z0-9_-]` and must be distinct.
    pub fn new(keys: &[(String, String)]) -> Result<Sealer, AuthError> {
        let mut parsed = Vec::with_capacity(keys.len());
        for (id, key) in keys {
            if !is_valid_key_id(id) {
                return Err(AuthError::KeyIdInvalid);
            }
            if parsed.iter().any(|k: &SealKey| k.id == *id) {
                return Err(AuthError::KeyIdDuplicate { key_id: id.clone() });
            }
            let invalid = || AuthError::KeyInvalid { key_id: id.clone() };
            // Keys come from configuration files and environment variables, where a stray newline is common.
            let bytes = STANDARD.decode(key.trim()).map_err(|_| invalid())?;
            if bytes.len() != KEY_BYTES {
                return Err(invalid());
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| invalid())?;
            parsed.push(SealKey { id: id.clone(), cipher });
        }
        let mut keys = parsed.into_iter();
        let current = keys.next().ok_or(AuthError::KeyMissing)?;
        Ok(Sealer { current, older: keys.collect() })
    }

    /// A new random key in the form `new` expects, for an operator to put in the configuration.
    pub fn generate_key() -> String {
        STANDARD.encode(os_random::<KEY_BYTES>())
    }

    /// The id of the key that `seal` uses.
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plain` under the current key with a fresh random nonce, so equal inputs give unrelated outputs.
    /// Random 96-bit nonces stay safe for far more values per key than a city will ever store.
    pub fn seal(&self, plain: &str) -> Result<String, AuthError> {
        if plain.len() > MAX_SEAL_BYTES {
            return Err(AuthError::SealInputTooLong);
        }
        let prefix = format!("{FORMAT_VERSION}.{}", self.current.id);
        // A fresh random nonce from rand's thread generator (a CSPRNG seeded from the OS): no system call per
        // sealed value, which a bulk load of millions of reports pays for.
        let mut nonce = [0u8; NONCE_BYTES];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                GenericArray::from_slice(&nonce),
                Payload { msg: plain.as_bytes(), aad: prefix.as_bytes() },
            )
            .map_err(|_| AuthError::SealInputTooLong)?;
        let mut body = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&ciphertext);
        Ok(format!("{prefix}.{}", URL_SAFE_NO_PAD.encode(body)))
    }

    /// Opens a value sealed under any key in the ring.
    pub fn open(&self, sealed: &str) -> Result<String, AuthError> {
        let (key_id, body) = split_sealed(sealed)?;
        let key = self
            .keys()
            .find(|k| k.id == key_id)
            .ok_or_else(|| AuthError::UnknownKeyId { key_id: key_id.to_owned() })?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| AuthError::SealedDataMalformed)?;
        if body.len() < NONCE_BYTES + TAG_BYTES {
            return Err(AuthError::SealedDataMalformed);
        }
        let (nonce, ciphertext) = body.split_at(NONCE_BYTES);
        let prefix = format!("{FORMAT_VERSION}.{key_id}");
        let plain = key
            .cipher
            .decrypt(GenericArray::from_slice(nonce), Payload { msg: ciphertext, aad: prefix.as_bytes() })
            .map_err(|_| AuthError::SealedDataInvalid)?;
        String::from_utf8(plain).map_err(|_| AuthError::SealedDataInvalid)
    }

    /// Whether `sealed` names the current key; a rotation re-seals every value for which this is false.
    /// Looks at the label only, so it is cheap enough to run over a whole table.
    pub fn is_current(&self, sealed: &str) -> bool {
        matches!(split_sealed(sealed), Ok((key_id, _)) if key_id == self.current.id)
    }

    fn keys(&self) -> impl Iterator<Item = &SealKey> {
        std::iter::once(&self.current).chain(&self.older)
    }
}

impl fmt::Debug for Sealer {
    // Written by hand so that key material can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("current_key_id", &self.current.id)
            .field("older_key_ids", &self.older.iter().map(|k| k.id.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

fn is_valid_key_id(id: &str) -> bool {
    (1..=16).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Splits `v1.<key id>.<body>` into the key id and the still-encoded body.
fn split_sealed(sealed: &str) -> Result<(&str, &str), AuthError> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(FORMAT_VERSION), Some(key_id), Some(body)) if is_valid_key_id(key_id) => Ok((key_id, body)),
        _ => Err(AuthError::SealedDataMalformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(pairs: &[(&str, &str)]) -> Result<Sealer, AuthError> {
        let owned: Vec<(String, String)> =
            pairs.iter().map(|(i, k)| (i.to_string(), k.to_string())).collect();
        Sealer::new(&owned)
    }

    fn key_of(byte: u8) -> String {
        STANDARD.encode([byte; KEY_BYTES])
    }

    fn sealer(id: &str, byte: u8) -> Sealer {
        ring(&[(id, &key_of(byte))]).unwrap()
    }

    #[test]
    fn seal_then_open_round_trips() {
        let s = sealer("k1", 7);
        let long = "南通".repeat(1000);
        for plain in
            ["", "13812345678", "11010519491231002X", "张三 南通市崇川区和平桥街道", "🙂 mixed ascii", &long]
        {
            let sealed = s.seal(plain).unwrap();
            assert!(sealed.starts_with("v1.k1."), "{sealed}");
            assert!(!sealed.contains(plain) || plain.is_empty());
            assert_eq!(s.open(&sealed).unwrap(), plain);
        }
    }

    #[test]
    fn the_body_is_nonce_ciphertext_and_tag() {
        let sealed = sealer("k1", 7).seal("13812345678").unwrap();
        let body = URL_SAFE_NO_PAD.decode(sealed.trim_start_matches("v1.k1.")).unwrap();
        assert_eq!(body.len(), NONCE_BYTES + 11 + TAG_BYTES);
    }

    #[test]
    fn sealing_the_same_text_twice_gives_different_values() {
        let s = sealer("k1", 7);
        let a = s.seal("13812345678").unwrap();
        let b = s.seal("13812345678").unwrap();
        assert_ne!(a, b);
        assert_eq!(s.open(&a).unwrap(), s.open(&b).unwrap());
    }

    #[test]
    fn changing_any_character_makes_open_fail() {
        let s = ring(&[("k1", &key_of(7)), ("k2", &key_of(8))]).unwrap();
        let sealed = s.seal("张三 13812345678").unwrap();
        for i in 0..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            // Stay inside the base64url alphabet so the change reaches decryption, not just the parser.
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(s.open(&tampered).is_err(), "position {i}: {tampered}");
        }
        for cut in [1, 2, sealed.len() - 7] {
            assert!(s.open(&sealed[..sealed.len() - cut]).is_err(), "cut {cut}");
        }
        assert!(s.open(&format!("{sealed}A")).is_err());
    }

    #[test]
    fn relabelling_a_value_to_another_configured_key_fails_authentication() {
        let s = ring(&[("k1", &key_of(7)), ("k2", &key_of(7))]).unwrap();
        let sealed = s.seal("13812345678").unwrap();
        let relabelled = sealed.replacen("v1.k1.", "v1.k2.", 1);
        assert_eq!(s.open(&relabelled), Err(AuthError::SealedDataInvalid));
    }

    #[test]
    fn a_value_from_another_key_ring_does_not_open() {
        let sealed = sealer("a", 1).seal("13812345678").unwrap();
        assert_eq!(sealer("b", 1).open(&sealed), Err(AuthError::UnknownKeyId { key_id: "a".to_owned() }));
        assert_eq!(sealer("a", 2).open(&sealed), Err(AuthError::SealedDataInvalid));
    }

    fn check_open(s: &Sealer, sealed: &str, expected: AuthError) {
        assert_eq!(s.open(sealed), Err(expected), "{sealed:?}");
    }

    #[test]
    fn malformed_values_are_rejected() {
        use AuthError::SealedDataMalformed as Malformed;
        let s = sealer("k1", 7);
        let short = URL_SAFE_NO_PAD.encode([0u8; NONCE_BYTES + TAG_BYTES - 1]);
        let no_plaintext = URL_SAFE_NO_PAD.encode([0u8; NONCE_BYTES + TAG_BYTES]);
        let table = [
            ("".to_owned(), Malformed),
            ("13812345678".to_owned(), Malformed),
            ("v1".to_owned(), Malformed),
            ("v1.k1".to_owned(), Malformed),
            ("v1.k1.".to_owned(), Malformed),
            ("v2.k1.AAAA".to_owned(), Malformed),
            ("v1.K1.AAAA".to_owned(), Malformed),
            ("v1..AAAA".to_owned(), Malformed),
            ("v1.k1.not base64!".to_owned(), Malformed),
            ("v1.k1.AAAA.AAAA".to_owned(), Malformed),
            (format!("v1.k1.{short}"), Malformed),
            (format!("v1.k1.{no_plaintext}"), AuthError::SealedDataInvalid),
            (format!("v1.k9.{no_plaintext}"), AuthError::UnknownKeyId { key_id: "k9".to_owned() }),
        ];
        for (sealed, expected) in table {
            check_open(&s, &sealed, expected);
        }
    }

    #[test]
    fn too_long_input_is_refused() {
        let s = sealer("k1", 7);
        assert!(s.seal(&"x".repeat(MAX_SEAL_BYTES)).is_ok());
        assert_eq!(s.seal(&"x".repeat(MAX_SEAL_BYTES + 1)), Err(AuthError::SealInputTooLong));
    }

    #[test]
    fn rotation_opens_old_values_and_reseals_them_under_the_new_key() {
        let (old_key, new_key) = (Sealer::generate_key(), Sealer::generate_key());
        let before = ring(&[("2024", &old_key)]).unwrap();
        let old_value = before.seal("11010519491231002X").unwrap();
        assert!(before.is_current(&old_value));

        let after = ring(&[("2025", &new_key), ("2024", &old_key)]).unwrap();
        assert_eq!(after.current_key_id(), "2025");
        assert!(!after.is_current(&old_value));
        let plain = after.open(&old_value).unwrap();
        assert_eq!(plain, "11010519491231002X");

        let resealed = after.seal(&plain).unwrap();
        assert!(resealed.starts_with("v1.2025."));
        assert!(after.is_current(&resealed));
        assert_eq!(after.open(&resealed).unwrap(), plain);
        // Once the old key is retired, only re-sealed values remain readable.
        let retired = ring(&[("2025", &new_key)]).unwrap();
        assert_eq!(retired.open(&resealed).unwrap(), plain);
        assert!(retired.open(&old_value).is_err());
    }

    #[test]
    fn is_current_is_false_for_garbage() {
        let s = sealer("k1", 7);
        for value in ["", "k1", "v1.k1", "v2.k1.AAAA", "13812345678"] {
            assert!(!s.is_current(value), "{value:?}");
        }
    }

    #[test]
    fn generated_keys_are_32_random_bytes_that_the_ring_accepts() {
        let (a, b) = (Sealer::generate_key(), Sealer::generate_key());
        assert_ne!(a, b);
        assert_eq!(STANDARD.decode(&a).unwrap().len(), KEY_BYTES);
        let s = ring(&[("k1", &a), ("k2", &b)]).unwrap();
        assert_eq!(s.open(&s.seal("x").unwrap()).unwrap(), "x");
    }

    fn check_new(pairs: &[(&str, &str)], expected: Result<(), AuthError>) {
        assert_eq!(ring(pairs).map(|_| ()), expected, "{pairs:?}");
    }

    #[test]
    fn key_ring_validation() {
        let good = key_of(1);
        let with_newline = format!("{good}\n");
        let short = STANDARD.encode([1u8; 16]);
        let long = STANDARD.encode([1u8; 33]);
        let invalid = |id: &str| Err(AuthError::KeyInvalid { key_id: id.to_owned() });
        check_new(&[], Err(AuthError::KeyMissing));
        check_new(&[("k1", &good)], Ok(()));
        check_new(&[("k1", &with_newline)], Ok(()));
        check_new(&[("a-b_c-2025", &good), ("k0", &good)], Ok(()));
        check_new(&[("abcdefghijklmnop", &good)], Ok(()));
        check_new(&[("abcdefghijklmnopq", &good)], Err(AuthError::KeyIdInvalid));
        check_new(&[("", &good)], Err(AuthError::KeyIdInvalid));
        check_new(&[("K1", &good)], Err(AuthError::KeyIdInvalid));
        check_new(&[("k.1", &good)], Err(AuthError::KeyIdInvalid));
        check_new(&[("密钥", &good)], Err(AuthError::KeyIdInvalid));
        check_new(
            &[("k1", &good), ("k1", &good)],
            Err(AuthError::KeyIdDuplicate { key_id: "k1".to_owned() }),
        );
        check_new(&[("k1", "")], invalid("k1"));
        check_new(&[("k1", "not base64!")], invalid("k1"));
        check_new(&[("k1", &short)], invalid("k1"));
        check_new(&[("k1", &long)], invalid("k1"));
        check_new(&[("k1", &good), ("k2", &short)], invalid("k2"));
    }

    #[test]
    fn a_key_in_the_id_field_is_not_echoed() {
        let key = key_of(9);
        let err = ring(&[(&key, &key)]).unwrap_err();
        assert_eq!(err, AuthError::KeyIdInvalid);
        assert!(!err.to_string().contains(&key));
    }

    #[test]
    fn debug_shows_key_ids_and_no_key_material() {
        let (current, older) = (key_of(0x42), key_of(0x99));
        let s = ring(&[("k2", &current), ("k1", &older)]).unwrap();
        let debug = format!("{s:?} {s:#?}");
        assert!(debug.contains("k2") && debug.contains("k1"), "{debug}");
        for needle in [&current[..8], &older[..8], "66, 66", "153, 153", "4242", "9999", "cipher"] {
            assert!(!debug.contains(needle), "{needle:?} in {debug}");
        }
    }
}
