//! Test dependencies named by environment variables (storage servers, fixture images, a
//! libvirt daemon), under one rule: when one is absent, a test skips with a message saying
//! how to get it, but under `CI=true` it fails, because the test command provides them there
//! and a skip would hide a broken set-up.

/// The value of `var`, or `None` after printing why the test skips; `how` says what sets it.
///
/// # Panics
/// When `var` is unset or empty and `CI` is `true`.
pub fn required_var(var: &str, how: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} is not set under CI=true; {how}")
        }
        _ => {
            eprintln!("skipped: {var} is not set; {how}");
            None
        }
    }
}

/// The location (`az://CONTAINER`, `s3://BUCKET`) of a storage server that
/// `scripts/storage-servers.sh` started, from `var`, without a trailing `/`.
///
/// # Panics
/// As [`required_var`].
pub fn storage_server(var: &str) -> Option<String> {
    required_var(
        var,
        "`bash scripts/test.sh` starts the storage servers (scripts/storage-servers.sh) and sets it",
    )
    .map(|location| location.trim_end_matches('/').to_owned())
}
