//! The distributors: one per AIB target type, plus `ObjectStore`.

mod gallery;
mod managed_image;
mod object_store;
mod ticket;
mod vhd;

pub use gallery::GalleryDistributor;
pub use managed_image::ManagedImageDistributor;
pub use object_store::ObjectStoreDistributor;
pub use vhd::VhdDistributor;

pub(crate) use ticket::TicketSlot;

use imagebuilder_core::distribute::DistributeError;

use crate::registry::RegistryError;

/// `DistributeError::Failed` for `run_output_name` from a message.
fn failed(run_output_name: &str, operation: &str, message: String) -> DistributeError {
    DistributeError::Failed {
        run_output_name: run_output_name.to_owned(),
        operation: operation.to_owned(),
        source: message.into(),
    }
}

/// `DistributeError::Rejected` for `run_output_name`.
fn rejected(run_output_name: &str, message: impl Into<String>) -> DistributeError {
    DistributeError::Rejected {
        run_output_name: run_output_name.to_owned(),
        message: message.into(),
    }
}

/// `base` (a store URL) with `path` appended as its own segments, before any query string
/// (a SAS token stays a query).
fn join_url(base: &str, path: &str) -> String {
    let (location, query) = match base.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (base, None),
    };
    let joined = format!(
        "{}/{}",
        location.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    match query {
        Some(query) => format!("{joined}?{query}"),
        None => joined,
    }
}

/// Refusals the user can act on are `Rejected`; failing files are `Failed`.
fn registry_error(run_output_name: &str, e: RegistryError) -> DistributeError {
    match e {
        RegistryError::Store(_) => failed(
            run_output_name,
            "use the registry",
            imagebuilder_core::error_chain(&e),
        ),
        other => rejected(run_output_name, other.to_string()),
    }
}

/// `uri` naming a folder (ending in `/`) gets `NAME.EXTENSION` appended; any other `uri`
/// names the file itself.
fn file_in(uri: &str, name: &str, extension: &str) -> String {
    if uri.ends_with('/') {
        join_url(uri, &format!("{name}.{extension}"))
    } else {
        uri.to_owned()
    }
}

/// The blocking registry call `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    run_output_name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DistributeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| failed(run_output_name, "use the registry", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_keep_the_query_last() {
        assert_eq!(join_url("file:///r/", "/a/b"), "file:///r/a/b");
        assert_eq!(
            join_url(
                "https://x.blob.core.windows.net/c?sv=1&sig=abc",
                "a/b.qcow2"
            ),
            "https://x.blob.core.windows.net/c/a/b.qcow2?sv=1&sig=abc"
        );
        assert_eq!(file_in("s3://b/out/", "vhd", "vhd"), "s3://b/out/vhd.vhd");
        assert_eq!(
            file_in("s3://b/out/x.vhd", "vhd", "vhd"),
            "s3://b/out/x.vhd"
        );
    }
}
