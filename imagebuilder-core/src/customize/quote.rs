//! Quoting values into guest command lines.

/// Quotes `text` for a POSIX shell: one single-quoted word, with `'` written as `'\''`.
pub(super) fn sh(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Quotes `text` for PowerShell: one single-quoted string, with `'` doubled.
pub(super) fn ps(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_survive_embedded_quotes() {
        assert_eq!(super::sh("it's"), r"'it'\''s'");
        assert_eq!(super::sh("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(super::ps("it's"), "'it''s'");
    }
}
