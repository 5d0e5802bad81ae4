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

/// `base` (a store URL) with `path` appended as its own segments.
fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
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
