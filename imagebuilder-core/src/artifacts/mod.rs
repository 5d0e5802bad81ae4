//! Fetching a run's scripts and files into staging, verifying each sha256 before any VM
//! starts.
//!
//! `file://` URLs and absolute paths are always supported; `http(s)://`, `s3://`, `az://` (and
//! Azure blob `https://` URLs) and `gs://` need the crate features `http`, `s3`, `azure` and
//! `gcp`. Cloud credentials come from the environment as each store's SDK defines it
//! (`AWS_*`, `AZURE_STORAGE_*`, `GOOGLE_*`); they never appear in messages, and URLs are
//! shown without their query string (which may hold a SAS token).

mod fetch;
mod hash;
mod redact;
mod store;

pub(crate) use fetch::{download, head, partial_path};
pub use fetch::{fetch, ArtifactError, FetchedArtifact};
pub use hash::sha256_file;
pub use redact::redact_uri;
pub use store::for_url as open_store;
