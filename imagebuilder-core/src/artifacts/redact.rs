//! Keeping secrets out of messages.

/// `uri` without its query string and user info, which may hold SAS tokens or passwords.
pub fn redact_uri(uri: &str) -> String {
    let without_query = match uri.split_once('?') {
        Some((base, _)) => format!("{base}?<redacted>"),
        None => uri.to_owned(),
    };
    match without_query.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host))
                if !rest.split('/').next().unwrap_or("").is_empty()
                    && rest.split('/').next().unwrap_or("").contains('@') =>
            {
                format!("{scheme}://<redacted>@{host}")
            }
            _ => without_query,
        },
        None => without_query,
    }
}

#[cfg(test)]
mod tests {
    use super::redact_uri;

    #[test]
    fn hides_sas_tokens_and_passwords() {
        assert_eq!(
            redact_uri("https://acct.blob.core.windows.net/c/s.sh?sv=2022&sig=SECRET"),
            "https://acct.blob.core.windows.net/c/s.sh?<redacted>"
        );
        assert_eq!(
            redact_uri("https://user:pw@host/x"),
            "https://<redacted>@host/x"
        );
        assert_eq!(redact_uri("https://host/a@b"), "https://host/a@b");
        assert_eq!(redact_uri("file:///tmp/x"), "file:///tmp/x");
    }
}
