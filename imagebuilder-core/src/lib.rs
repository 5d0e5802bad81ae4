#![doc = include_str!("../README.md")]

pub mod artifacts;
pub mod customize;
pub mod distribute;
pub mod engine;
pub mod environment;
pub mod host;
pub mod plan;
pub mod run;
pub mod source;
pub mod store;
pub mod template;
#[cfg(feature = "testkit")]
pub mod testkit;

/// An error and its sources, joined: `failed to fetch x: connection refused`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source in their own message; say it once.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
