//! Unique names for the databases, tables, buckets and tables-in-moto that tests create, so
//! tests sharing one server never see each other's state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest prefix kept, so that the whole name fits PostgreSQL's 63-byte identifiers and S3's
/// 63-character bucket names.
const MAX_PREFIX: usize = 40;

/// A name that is unique on this machine: `prefix` followed by the time, the process id and a
/// per-process counter, all in lowercase base 36 (e.g. `copy` → `copyk3z8q0w1ab0a2bc000`).
///
/// Only ASCII letters and digits of `prefix` are kept (lowercased, at most 40 of them), so the
/// result is a valid unquoted PostgreSQL identifier, S3 bucket name and DynamoDB table name;
/// a `t` is put in front when it would otherwise start with a digit.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut name: String = prefix
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(MAX_PREFIX)
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.insert(0, 't');
    }
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Fixed widths keep the fields from running into each other.
    name.push_str(&base36(micros, 10));
    name.push_str(&base36(u128::from(std::process::id()), 5));
    name.push_str(&base36(u128::from(count), 3));
    name
}

/// `value` in lowercase base 36, left-padded with zeros to `width` digits and truncated to
/// its `width` lowest digits.
fn base36(mut value: u128, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value % 36) as usize];
        value /= 36;
    }
    String::from_utf8(out).expect("base-36 digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_lowercase_and_short() {
        let a = unique_name("Copy_Test-1");
        let b = unique_name("Copy_Test-1");
        assert_ne!(a, b);
        assert!(a.starts_with("copytest1"), "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{a}"
        );
        let long = unique_name(&"x".repeat(100));
        assert!(long.len() <= 63, "{}", long.len());
    }

    #[test]
    fn names_start_with_a_letter() {
        assert!(unique_name("").starts_with('t'));
        assert!(unique_name("9lives").starts_with("t9lives"));
    }

    #[test]
    fn base36_pads_and_truncates() {
        assert_eq!(base36(35, 3), "00z");
        assert_eq!(base36(36 * 36 * 36 + 1, 3), "001");
    }
}
