//! Writing outputs to object stores: [`OutputSink`]s for uploads and Azure page blobs.
//!
//! | URL | sink | needs feature |
//! |---|---|---|
//! | `file://`, `memory://` | [`UploadSink`] | — |
//! | `s3://` | [`UploadSink`] | `s3` |
//! | `gs://` | [`UploadSink`] | `gcp` |
//! | `az://`, `https://ACCOUNT.blob.core.windows.net/...` | `PageBlobSink` for a VHD, else [`UploadSink`] | `azure` |
//!
//! [`sink_for`] picks one. Credentials come from the environment only, with the names each
//! store's `object_store` builder reads (`AWS_*`, `AZURE_STORAGE_*`, `GOOGLE_*`), or from an
//! Azure URL's SAS token; they never appear in messages, and URLs are shown without their
//! query string.
//!
//! Sinks are blocking, as [`OutputSink`] is: each captures a [`tokio::runtime::Handle`] when
//! created and runs its requests on that runtime with [`Handle::block_on`], so they must be
//! driven from a thread outside the runtime's workers (such as
//! [`tokio::task::spawn_blocking`]), never from async code.
//!
//! An output appears under its final name only when complete: a multipart upload is
//! completed (or a local file renamed) in [`OutputSink::finish`], and a page blob is written
//! under a temporary name and copied to the final one. A sink dropped without `finish`, or
//! whose `finish` fails, aborts its upload or deletes its temporary blob.
//!
//! `memory://` URLs name objects in one in-memory store shared by the whole process: for
//! tests.

use std::sync::{Arc, OnceLock};

use imagebuilder_core::artifacts::redact_uri;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt as _};
use tokio::runtime::Handle;

use crate::disk::OutputSink;

#[cfg(feature = "azure")]
mod azure;
mod cleanup;
mod redact;
mod upload;

#[cfg(feature = "azure")]
use azure::is_azure_url;
#[cfg(feature = "azure")]
pub use azure::{page_ranges, PageBlobSink};
pub use upload::{upload_file, UploadSink};

/// An output could not be opened, written or completed in its store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL names no store this build can write to, or the sink cannot serve it.
    #[error("cannot write to {url}: {reason}")]
    Unsupported {
        /// The output (query string removed).
        url: String,
        /// Why.
        reason: String,
    },
    /// A request to the store failed.
    #[error("{what}")]
    Request {
        /// What was being done, naming the output (query string removed).
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl StoreError {
    pub(crate) fn request(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::Request {
            what: what.into(),
            source: source.into(),
        }
    }
}

impl From<StoreError> for std::io::Error {
    fn from(error: StoreError) -> Self {
        let kind = match error {
            StoreError::Unsupported { .. } => std::io::ErrorKind::Unsupported,
            StoreError::Request { .. } => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, error)
    }
}

/// The store serving `url` and the object's path in it.
///
/// `file://` (and absolute paths), `memory://` and, with their features, `s3://`, `gs://`,
/// `az://` and Azure blob `https://` URLs (a query string there is its SAS token).
///
/// # Errors
/// [`StoreError::Unsupported`] when the URL is not one of those or its store's configuration
/// (from the environment) is incomplete.
pub fn open_store(url: &str) -> Result<(Arc<dyn ObjectStore>, StorePath), StoreError> {
    let shown = redact_uri(url);
    let unsupported = |reason: String| StoreError::Unsupported {
        url: shown.clone(),
        reason: reason.replace(url, &shown),
    };
    let parsed = if url.starts_with('/') {
        url::Url::from_file_path(url).map_err(|()| unsupported("not a usable path".into()))?
    } else {
        url::Url::parse(url).map_err(|e| unsupported(format!("not a URL ({e})")))?
    };
    if parsed.scheme() == "memory" {
        let (_, path) = object_store::ObjectStoreScheme::parse(&parsed)
            .map_err(|e| unsupported(e.to_string()))?;
        return Ok((memory_store(), path));
    }
    imagebuilder_core::artifacts::open_store(&parsed).map_err(unsupported)
}

fn memory_store() -> Arc<dyn ObjectStore> {
    static STORE: OnceLock<Arc<InMemory>> = OnceLock::new();
    STORE.get_or_init(|| Arc::new(InMemory::new())).clone()
}

/// Deletes the object at `url`; one that does not exist is already deleted.
///
/// # Errors
/// [`StoreError`] when the URL names no usable store or the store refuses.
pub async fn delete_object(url: &str) -> Result<(), StoreError> {
    let (store, path) = open_store(url)?;
    match store.delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(StoreError::request(
            format!("failed to delete {}", redact_uri(url)),
            redact::source(e, url),
        )),
    }
}

/// The sink writing an output of about `len_hint` bytes to `url`.
///
/// A page blob (`PageBlobSink`, feature `azure`) when `page_blob` is set and the
/// URL is an Azure blob (`az://`, `https://ACCOUNT.blob.core.windows.net/...` or under the
/// configured emulator or endpoint); it needs `len_hint`. Otherwise an [`UploadSink`], which
/// uses `len_hint` to size its parts. Requests run on `handle` (see the [module docs](self)).
///
/// # Errors
/// [`StoreError::Unsupported`] when the URL cannot be written to; [`StoreError::Request`]
/// when the store refuses to start the upload.
pub fn sink_for(
    url: &str,
    len_hint: Option<u64>,
    page_blob: bool,
    handle: Handle,
) -> Result<Box<dyn OutputSink>, StoreError> {
    #[cfg(feature = "azure")]
    if page_blob && is_azure_url(url) {
        let len = len_hint.ok_or_else(|| StoreError::Unsupported {
            url: redact_uri(url),
            reason: "a page blob is created with its length, which was not given".into(),
        })?;
        return Ok(Box::new(PageBlobSink::create(url, len, handle)?));
    }
    #[cfg(not(feature = "azure"))]
    let _ = page_blob;
    Ok(Box::new(UploadSink::create(url, len_hint, handle)?))
}
