//! Random tokens, the hashes under which they are stored, citizens' tracking codes, and the SHA-256/HMAC
//! helpers the rest of the platform uses for digests and webhook signatures.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

/// Tracking-code alphabet: digits and capitals without 0/O, 1/I/L, which people misread when they copy a
/// code from a receipt or read it over the phone.
const TRACKING_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// `N` bytes straight from the operating system's generator. rand's `OsRng` aborts the call if the OS has
/// no entropy to give, which on the platforms Shiyu runs on means the machine is unusable anyway.
pub(crate) fn os_random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A fresh session or API token: 32 bytes from the OS generator as URL-safe base64 without padding
/// (43 characters), so it travels in cookies, headers and URLs unchanged.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(os_random::<32>())
}

/// What is stored for a session or API token: the hex SHA-256 of it. A leaked table then yields no
/// usable token, and because tokens are 256 random bits a plain hash (no salt, no stretching) suffices.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// A citizen-facing tracking code such as `7KQ3-MZ2X-9HRT` for a report taken in on `day` (days since the
/// Unix epoch): 12 symbols from an unambiguous alphabet, in groups of four. The first two symbols follow the
/// day (they repeat every 961 days) and the other ten, about 49.5 bits, are random. The day prefix keeps a
/// day's codes together in the database index, so a busy intake writes a few index pages per commit
/// instead of one random page per report; it tells a finder of the code only roughly when it was issued,
/// and 49.5 random bits behind a rate-limited endpoint leave nothing to guess.
pub fn tracking_code(day: i64) -> String {
    // rand's thread generator: a ChaCha12 stream seeded and reseeded from the OS, as unpredictable as the OS's
    // own bytes without a system call and a new cipher key per code (both showed up in bulk loads).
    let mut rng = rand::thread_rng();
    let base = TRACKING_ALPHABET.len() as i64;
    let day = day.rem_euclid(base * base);
    let mut symbols = vec![(day / base) as usize, (day % base) as usize];
    symbols.extend((0..10).map(|_| rng.gen_range(0..TRACKING_ALPHABET.len())));
    let mut code = String::with_capacity(14);
    for (i, symbol) in symbols.into_iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        code.push(char::from(TRACKING_ALPHABET[symbol]));
    }
    code
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Lower-case hex HMAC-SHA256 of `message` under `key` (any length), as used for webhook signatures.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    // HMAC takes keys of any length, yet `new_from_slice` returns a Result that is never Err. Doing RFC
    // 2104's first step here (hash a key longer than a block, zero-pad the rest) gives a block-sized key for
    // the constructor without a Result, and the same MAC.
    let mut block = Key::<Hmac<Sha256>>::default();
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block);
    mac.update(message);
    to_hex(&mac.finalize().into_bytes())
}

/// Compares two byte strings in time that depends only on their lengths, for checking secrets such as
/// signatures and token hashes without leaking how many leading bytes matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn random_tokens_are_43_url_safe_characters_and_do_not_repeat() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let token = random_token();
            assert_eq!(token.len(), 43, "{token}");
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
            assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
            assert!(seen.insert(token));
        }
    }

    #[test]
    fn token_hash_is_the_hex_sha256_of_the_token() {
        let token = random_token();
        let hash = token_hash(&token);
        assert_eq!(hash, sha256_hex(token.as_bytes()));
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, token_hash(&random_token()));
    }

    #[test]
    fn tracking_codes_have_three_groups_of_four_unambiguous_symbols() {
        let mut seen = HashSet::new();
        for n in 0..1000 {
            let code = tracking_code(20_000 + n / 100);
            assert_eq!(code.len(), 14, "{code}");
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 3, "{code}");
            for group in groups {
                assert_eq!(group.len(), 4, "{code}");
                assert!(group.bytes().all(|b| TRACKING_ALPHABET.contains(&b)), "{code}");
            }
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']), "{code}");
            seen.insert(code);
        }
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn codes_of_one_day_share_their_first_two_symbols_and_days_differ() {
        let day = 20_415;
        let prefix = |code: String| code[..2].to_string();
        assert_eq!(prefix(tracking_code(day)), prefix(tracking_code(day)));
        assert_ne!(prefix(tracking_code(day)), prefix(tracking_code(day + 1)));
        assert_eq!(prefix(tracking_code(day)), prefix(tracking_code(day + 961)), "the prefix repeats");
        assert_eq!(tracking_code(-1).len(), 14, "any day gives a well-formed code");
    }

    #[test]
    fn the_alphabet_has_no_ambiguous_or_repeated_symbols() {
        let set: HashSet<u8> = TRACKING_ALPHABET.iter().copied().collect();
        assert_eq!(set.len(), TRACKING_ALPHABET.len());
        assert!(TRACKING_ALPHABET.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert!(!set.contains(&b'0') && !set.contains(&b'O') && !set.contains(&b'1'));
        assert!(!set.contains(&b'I') && !set.contains(&b'L'));
    }

    fn check_hex(actual: String, expected: &str) {
        assert_eq!(actual, expected);
    }

    #[test]
    fn sha256_known_vectors() {
        check_hex(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        check_hex(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn hmac_sha256_rfc4231_vectors() {
        // Test case 1: a 20-byte key.
        check_hex(
            hmac_sha256_hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        );
        // Test case 2: a key shorter than the block.
        check_hex(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        );
        // Test case 6: a key longer than the block, which must be hashed first.
        check_hex(
            hmac_sha256_hex(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        );
    }

    #[test]
    fn hmac_agrees_with_the_crate_for_keys_of_every_length_around_the_block() {
        for len in [0usize, 1, 31, 32, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            mac.update(b"message");
            assert_eq!(hmac_sha256_hex(&key, b"message"), to_hex(&mac.finalize().into_bytes()), "len {len}");
        }
    }

    #[test]
    fn constant_time_eq_table() {
        let table: &[(&[u8], &[u8], bool)] = &[
            (b"", b"", true),
            (b"abc", b"abc", true),
            (b"abc", b"abd", false),
            (b"abc", b"ab", false),
            (b"", b"a", false),
            (b"\x00", b"\x80", false),
        ];
        for &(a, b, expected) in table {
            assert_eq!(constant_time_eq(a, b), expected, "{a:?} vs {b:?}");
        }
    }
}
