//! Masking personal data for display (a phone shows as `138****5678`), and validating mainland mobile and
//! resident ID numbers before they are sealed.

/// Masks a phone number: an 11-digit mainland mobile keeps its first 3 and last 4 digits; anything else
/// longer than 6 characters keeps its first 3 and last 2; shorter values are masked completely.
pub fn mask_phone(p: &str) -> String {
    let p = p.trim();
    if is_valid_mobile(p) {
        let chars: Vec<char> = p.chars().collect();
        return keep_ends(&chars, 3, 4);
    }
    mask_unless_longer_than_6(p, 3, 2)
}

/// Masks an ID number: an 18-character resident ID keeps its region (first 6) and last 4, hiding the
/// birth date; other values longer than 6 characters keep their first 2 and last 2; shorter ones are
/// masked completely.
pub fn mask_id_number(id: &str) -> String {
    let id = id.trim();
    let chars: Vec<char> = id.chars().collect();
    if chars.len() == 18 {
        return keep_ends(&chars, 6, 4);
    }
    mask_unless_longer_than_6(id, 2, 2)
}

/// Masks a personal name to its first character: 张三 → 张*, 欧阳娜娜 → 欧***. A one-character name is
/// masked completely, since its first character is all of it.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_owned(),
        _ => keep_ends(&chars, 1, 0),
    }
}

/// Whether `p` is a mainland mobile number: `1`, then `3`-`9`, then 9 more digits, nothing else.
pub fn is_valid_mobile(p: &str) -> bool {
    match p.as_bytes() {
        [b'1', second, rest @ ..] => {
            (b'3'..=b'9').contains(second) && rest.len() == 9 && rest.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// Whether `id` is an 18-character resident ID number (GB 11643-1999): 17 digits, a check character
/// (ISO 7064 MOD 11-2, `X` for ten) and a real calendar date between 1900 and 2099 in positions 7-14.
/// Only an upper-case `X` is accepted, so that one person has one spelling; callers upper-case user input.
pub fn is_valid_id_number(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let Some((&check, body)) = id.as_bytes().split_last() else {
        return false;
    };
    if body.len() != 17 || !body.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let digits: Vec<u32> = body.iter().map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    let expected = CHECK.get((sum % 11) as usize).copied();
    if expected != Some(check) {
        return false;
    }
    let number = |range: std::ops::Range<usize>| digits[range].iter().fold(0, |acc, d| acc * 10 + d);
    is_real_date(number(6..10), number(10..12), number(12..14))
}

fn is_real_date(year: u32, month: u32, day: u32) -> bool {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1900..=2099).contains(&year) && (1..=days_in_month).contains(&day)
}

fn mask_unless_longer_than_6(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() > 6 {
        keep_ends(&chars, head, tail)
    } else {
        "*".repeat(chars.len())
    }
}

/// Keeps `head` characters at the start and `tail` at the end and stars the rest, one star per character
/// so the masked value keeps its length. Masks everything if there would be nothing to hide.
fn keep_ends(chars: &[char], head: usize, tail: usize) -> String {
    if head + tail >= chars.len() {
        return "*".repeat(chars.len());
    }
    let hidden = chars.len() - head - tail;
    chars[..head].iter().chain(std::iter::repeat_n(&'*', hidden)).chain(&chars[head + hidden..]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: fn(&str) -> String, table: &[(&str, &str)]) {
        for &(input, expected) in table {
            assert_eq!(f(input), expected, "{input:?}");
        }
    }

    #[test]
    fn phones() {
        check(
            mask_phone,
            &[
                ("13812345678", "138****5678"),
                (" 19912345678 ", "199****5678"),
                ("12812345678", "128******78"),
                ("051385123456", "051*******56"),
                ("0513-85123456", "051********56"),
                ("1234567", "123**67"),
                ("123456", "******"),
                ("110", "***"),
                ("", ""),
            ],
        );
    }

    #[test]
    fn id_numbers() {
        check(
            mask_id_number,
            &[
                ("11010519491231002X", "110105********002X"),
                ("320602199003071236", "320602********1236"),
                ("320602900307123", "32***********23"),
                ("1234567", "12***67"),
                ("123456", "******"),
                ("", ""),
            ],
        );
    }

    #[test]
    fn names() {
        check(
            mask_name,
            &[
                ("张三", "张*"),
                ("王小明", "王**"),
                ("欧阳娜娜", "欧***"),
                ("阿卜杜拉·艾力", "阿******"),
                (" 李四 ", "李*"),
                ("李", "*"),
                ("Alice Smith", "A**********"),
                ("", ""),
            ],
        );
    }

    #[test]
    fn masks_never_contain_the_hidden_middle() {
        assert!(!mask_id_number("11010519491231002X").contains("19491231"));
        assert!(!mask_phone("13812345678").contains("1234"));
    }

    #[test]
    fn mobiles() {
        let table = [
            ("13812345678", true),
            ("19912345678", true),
            ("13012345678", true),
            ("12812345678", false),
            ("10812345678", false),
            ("23812345678", false),
            ("1381234567", false),
            ("138123456789", false),
            ("1381234567a", false),
            ("138 1234 5678", false),
            ("+8613812345678", false),
            ("１３８１２３４５６７８", false),
            ("", false),
        ];
        for (p, expected) in table {
            assert_eq!(is_valid_mobile(p), expected, "{p:?}");
        }
    }

    #[test]
    fn resident_id_numbers() {
        let table = [
            ("11010519491231002X", true),
            ("320602199003071236", true),
            ("320602200002294564", true),
            ("320602202402290000", true),
            ("440301209912310004", true),
            ("11010519491231002x", false),
            ("110105194912310021", false),
            ("320602199003071237", false),
            ("220602199003071236", false),
            ("320602190002294568", false),
            ("320602202302294565", false),
            ("320602199013011237", false),
            ("320602199001001234", false),
            ("320602198004311233", false),
            ("320602189912311234", false),
            ("32060219900307123", false),
            ("3206021990030712366", false),
            ("32060219900307123 ", false),
            ("X20602199003071236", false),
            ("320602900307123", false),
            ("", false),
        ];
        for (id, expected) in table {
            assert_eq!(is_valid_id_number(id), expected, "{id:?}");
        }
    }
}
