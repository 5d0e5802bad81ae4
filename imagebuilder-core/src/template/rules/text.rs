//! Text patterns of single fields.

/// `runOutputName` and template names: `^[A-Za-z0-9-_.]{1,64}$`.
pub fn is_run_output_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A sha256 digest written as exactly 64 hex digits (either case).
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A gallery image version `x.y.z` with decimal integer parts.
pub fn is_gallery_version(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A date `YYYY-MM-DD` or an RFC 3339 date and time.
pub fn is_date_or_time(text: &str) -> bool {
    use time::format_description::well_known::Rfc3339;
    let date = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &date).is_ok() || time::OffsetDateTime::parse(text, &Rfc3339).is_ok()
}

/// A placeholder that users replace before submitting, such as `<rgName>` or `<region1>`.
/// AIB's samples ship with these; the shape around them is still checked.
pub fn is_placeholder(text: &str) -> bool {
    text.len() > 2 && text.starts_with('<') && text.ends_with('>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_output_names() {
        assert!(is_run_output_name("ubuntu-22.04_gen2"));
        assert!(is_run_output_name(&"a".repeat(64)));
        assert!(!is_run_output_name(&"a".repeat(65)));
        assert!(!is_run_output_name(""));
        assert!(!is_run_output_name("has space"));
        assert!(!is_run_output_name("slash/"));
    }

    #[test]
    fn sha256_digests() {
        assert!(is_sha256_hex(
            &"aB0"
                .repeat(21)
                .chars()
                .chain("f".chars())
                .collect::<String>()
        ));
        assert!(!is_sha256_hex(&"a".repeat(63)));
        assert!(!is_sha256_hex(&"g".repeat(64)));
    }

    #[test]
    fn gallery_versions_and_placeholders() {
        assert!(is_gallery_version("1.0.0"));
        assert!(is_gallery_version("0.24105.52755"));
        assert!(!is_gallery_version("1.0"));
        assert!(!is_gallery_version("1.0.x"));
        assert!(!is_gallery_version("latest"));
        assert!(is_placeholder("<rgName>"));
        assert!(!is_placeholder("<>"));
        assert!(!is_placeholder("rg"));
    }
}
