//! Deciding whether a JSON string is an ARM expression, an escaped literal
//! or plain text.

/// How a JSON string value is to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateString<'a> {
    /// Plain text, used as is.
    Literal(&'a str),
    /// `[[...]`: a literal whose first `[` was doubled to stop evaluation.
    Escaped(&'a str),
    /// `[...]`: the text between the outer brackets is an expression.
    Expression(&'a str),
}

/// Classifies a JSON string.
///
/// Only strings that both start with `[` and end with `]` are expressions;
/// anything else (such as PowerShell's `[Net.ServicePointManager]::...`) is
/// literal text.
pub(crate) fn classify(s: &str) -> TemplateString<'_> {
    if s.len() < 2 || !s.starts_with('[') || !s.ends_with(']') {
        return TemplateString::Literal(s);
    }
    if s.starts_with("[[") {
        return TemplateString::Escaped(&s[1..]);
    }
    TemplateString::Expression(&s[1..s.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strings_are_literal() {
        assert_eq!(classify("hello"), TemplateString::Literal("hello"));
        assert_eq!(classify(""), TemplateString::Literal(""));
        assert_eq!(classify("["), TemplateString::Literal("["));
        assert_eq!(classify("]"), TemplateString::Literal("]"));
        assert_eq!(
            classify("[Net.ServicePointManager]::SecurityProtocol"),
            TemplateString::Literal("[Net.ServicePointManager]::SecurityProtocol")
        );
        assert_eq!(classify("a[0]"), TemplateString::Literal("a[0]"));
    }

    #[test]
    fn bracketed_strings_are_expressions() {
        assert_eq!(
            classify("[parameters('a')]"),
            TemplateString::Expression("parameters('a')")
        );
        assert_eq!(classify("[]"), TemplateString::Expression(""));
    }

    #[test]
    fn double_bracket_escapes_one_bracket() {
        assert_eq!(classify("[[test]"), TemplateString::Escaped("[test]"));
        assert_eq!(classify("[[]"), TemplateString::Escaped("[]"));
        // Not ending in `]` means it was never an expression: left untouched.
        assert_eq!(classify("[[abc"), TemplateString::Literal("[[abc"));
    }
}
