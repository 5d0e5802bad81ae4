//! Building document paths such as `resources[0].properties['a.b']`.

/// Appends an object key to `base`, quoting keys that are not plain names.
///
/// Keys like `[resourceId(...)]` or `a.b` would make a dotted path
/// ambiguous, so they are written as `['...']`.
pub(crate) fn key(base: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$');
    match (base.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{base}.{key}"),
        (_, false) => format!("{base}['{}']", key.replace('\'', "''")),
    }
}

/// Appends an array index to `base`.
pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_are_dotted() {
        assert_eq!(key("", "resources"), "resources");
        assert_eq!(key("parameters", "api-version"), "parameters.api-version");
        assert_eq!(key("variables", "$schema"), "variables.$schema");
    }

    #[test]
    fn unusual_keys_are_quoted() {
        assert_eq!(
            key("identity", "[resourceId('a', 'b')]"),
            "identity['[resourceId(''a'', ''b'')]']"
        );
        assert_eq!(key("x", "a.b"), "x['a.b']");
        assert_eq!(key("x", ""), "x['']");
    }

    #[test]
    fn indexes_use_brackets() {
        assert_eq!(index("resources", 3), "resources[3]");
    }
}
