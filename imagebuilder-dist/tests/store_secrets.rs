//! Credentials come from the environment only and never show in messages. One test in its
//! own process: it changes the environment.
#![cfg(feature = "azure")]

mod support;

use imagebuilder_dist::store::sink_for;
use support::{runtime, server, unique};

/// A well-formed account key that is not the account's: every request is refused.
const WRONG_KEY: &str =
    "c2VjcmV0LWtleS10aGF0LW11c3QtbmV2ZXItc2hvdy11cC1pbi1hbnktbWVzc2FnZS0xMjM0NTY3ODk=";

#[test]
fn a_refused_key_is_not_in_any_message() {
    let Some(container) = server("IMAGEBUILDER_TEST_AZURITE") else {
        return;
    };
    // The only test of this process: no other thread reads the environment meanwhile.
    std::env::set_var("AZURE_STORAGE_ACCOUNT_KEY", WRONG_KEY);
    let rt = runtime();
    for page_blob in [true, false] {
        let url = format!("{container}/{}/disk.vhd", unique("secret"));
        let error = match sink_for(&url, Some(1 << 20), page_blob, rt.handle().clone()) {
            Err(error) => std::io::Error::from(error),
            // Multipart uploads may start without a request: the first part or the
            // completion is refused then.
            Ok(mut sink) => match sink.write_at(0, &[1; 4096]) {
                Err(error) => error,
                Ok(()) => sink.finish(1 << 20).unwrap_err(),
            },
        };
        let mut message = format!("{error} / {error:?}");
        let mut source = std::error::Error::source(&error);
        while let Some(s) = source {
            message.push_str(&format!(" / {s}"));
            source = s.source();
        }
        assert!(
            message.contains(&url),
            "the message names the blob: {message}"
        );
        assert!(
            message.contains("403") || message.contains("Authentication"),
            "page_blob={page_blob}: {message}"
        );
        assert!(
            !message.contains(WRONG_KEY),
            "page_blob={page_blob}: {message}"
        );
        assert!(
            !message.contains(&WRONG_KEY[..20]),
            "page_blob={page_blob}: {message}"
        );
    }
}
