//! Keeping a URL's secrets (its query string: a SAS token) out of error sources.

use std::error::Error;

/// `error` as a source, stripped of the secrets of `url`.
///
/// When `url` has no query string the error is kept as it is. Otherwise its message (with
/// its sources') is kept as text, with every query value of `url` that it quotes, raw or
/// percent-decoded, replaced by `<redacted>`.
pub(super) fn source(
    error: impl Error + Send + Sync + 'static,
    url: &str,
) -> Box<dyn Error + Send + Sync + 'static> {
    let Some((_, query)) = url.split_once('?') else {
        return Box::new(error);
    };
    let mut message = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        message.push_str(": ");
        message.push_str(&source.to_string());
        next = source.source();
    }
    Box::<dyn Error + Send + Sync>::from(scrub(&message, query))
}

/// `message` without the values of `query` (nor the whole query).
pub(super) fn scrub(message: &str, query: &str) -> String {
    let mut secrets: Vec<String> = vec![query.to_owned()];
    for (_, value) in url::form_urlencoded::parse(query.as_bytes()) {
        secrets.push(value.into_owned());
    }
    for pair in query.split('&') {
        if let Some((_, raw)) = pair.split_once('=') {
            secrets.push(raw.to_owned());
        }
    }
    // Longest first, so a value inside the whole query goes with it. Short values (`sv`,
    // `sp=rw`) are not secret and would garble the message.
    secrets.retain(|s| s.len() >= 8);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut message = message.to_owned();
    for secret in secrets {
        message = message.replace(&secret, "<redacted>");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn removes_raw_and_decoded_values() {
        let query = "sv=2022-11-02&sig=ab%2Bcd%3Defgh12";
        assert_eq!(
            scrub(
                "GET https://a/c/b?sv=2022-11-02&sig=ab%2Bcd%3Defgh12 failed",
                query
            ),
            "GET https://a/c/b?<redacted> failed"
        );
        assert_eq!(
            scrub("sig ab+cd=efgh12 refused", query),
            "sig <redacted> refused"
        );
        assert_eq!(scrub("sig=ab%2Bcd%3Defgh12", query), "sig=<redacted>");
    }
}
