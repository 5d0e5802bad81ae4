//! Deterministic identifiers: guid and uniqueString.
//!
//! Azure computes these with its own hashes. Locally there is nothing to
//! match them against, so both use a 128-bit FNV-1a hash of the arguments:
//! the output differs from Azure's, but is stable across runs, platforms
//! and versions of this crate, and only depends on the argument values.

use serde_json::Value;

use super::{Args, CallContext};

/// FNV-1a over every argument, with a 0xFF byte (never valid in UTF-8)
/// after each so `('ab', 'c')` and `('a', 'bc')` hash differently.
fn hash_args(a: &Args<'_>) -> Result<u128, String> {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h = OFFSET;
    for i in 0..a.len() {
        for &b in a.string(i)?.as_bytes().iter().chain(&[0xff]) {
            h ^= u128::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    Ok(h)
}

/// `guid(baseString, ...)`: a version-5-shaped GUID from the arguments.
pub(crate) fn guid(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.at_least(1)?;
    let mut bytes = hash_args(a)?.to_be_bytes();
    // Mark as a name-based (v5) RFC 4122 GUID so consumers that check the
    // version and variant accept it.
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Value::String(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )))
}

/// `uniqueString(baseString, ...)`: 13 characters from `a-z2-7`, the same
/// shape as Azure's.
pub(crate) fn unique_string(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.at_least(1)?;
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let h = hash_args(a)?;
    // 13 characters of 5 bits need 65 bits: the folded 64-bit hash plus a
    // trailing zero bit.
    let bits = u128::from((h >> 64) as u64 ^ h as u64) << 1;
    let out: String = (0..13)
        .map(|k| ALPHABET[((bits >> (60 - 5 * k)) & 31) as usize] as char)
        .collect();
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use crate::template::arm::test_support::{eval, eval_err};

    fn text(expr: &str) -> String {
        eval(expr).as_str().unwrap().to_string()
    }

    #[test]
    fn guid_is_stable_and_well_formed() {
        let g = text("[guid('a', 'b')]");
        assert_eq!(g, text("[guid('a', 'b')]"));
        assert_eq!(g.len(), 36);
        let parts: Vec<&str> = g.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('5'));
        assert!(matches!(
            parts[3].chars().next(),
            Some('8' | '9' | 'a' | 'b')
        ));
        assert!(g
            .chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn guid_depends_on_every_argument_and_boundary() {
        let ab_c = text("[guid('ab', 'c')]");
        assert_ne!(ab_c, text("[guid('a', 'bc')]"));
        assert_ne!(ab_c, text("[guid('abc')]"));
        assert_ne!(text("[guid('x')]"), text("[guid('y')]"));
    }

    #[test]
    fn unique_string_is_stable_and_shaped_like_azure() {
        let u = text("[uniqueString(resourceGroup().id)]");
        assert_eq!(u, text("[uniqueString(resourceGroup().id)]"));
        assert_eq!(u.len(), 13);
        assert!(u
            .chars()
            .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c)));
        assert_ne!(u, text("[uniqueString('other')]"));
    }

    #[test]
    fn hash_functions_need_strings() {
        assert_eq!(
            eval_err("[guid()]"),
            "expr: function 'guid' expects at least 1 argument, got 0 (at position 2)"
        );
        assert_eq!(
            eval_err("[uniqueString('a', 1)]"),
            "expr: function 'uniqueString' expects argument 2 to be a string, got int (at position 2)"
        );
    }
}
