//! Downloading one artifact while hashing it.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use object_store::path::Path as StorePath;
use object_store::ObjectStore;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use url::Url;

use super::{redact_uri, store};

/// An artifact could not be staged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// The URI is not one this library can fetch.
    #[error("cannot fetch {uri}: {reason}")]
    Unsupported {
        /// The artifact (query string removed).
        uri: String,
        /// Why.
        reason: String,
    },
    /// Fetching failed.
    #[error("failed to fetch {uri}")]
    Fetch {
        /// The artifact (query string removed).
        uri: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The content is not what the template's sha256Checksum says.
    #[error("sha256 mismatch for {uri}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The artifact (query string removed).
        uri: String,
        /// The template's sha256Checksum.
        expected: String,
        /// The digest of what was fetched.
        actual: String,
    },
}

/// A staged artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedArtifact {
    /// The local copy.
    pub path: PathBuf,
    /// sha256 of its content, 64 lower-case hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Fetches `uri` into `dir`, verifying `expected_sha256` (64 hex digits, any case) when
/// given. The copy appears under its final name only once complete and verified.
pub async fn fetch(
    uri: &str,
    expected_sha256: Option<&str>,
    dir: &Path,
) -> Result<FetchedArtifact, ArtifactError> {
    let url = open(uri)?.url;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| fetch_error(uri, e))?;
    let final_path = dir.join(local_name(&url));
    let partial = partial_path(&final_path);
    let download = download(uri, expected_sha256, partial).await?;
    let (sha256, size) = (download.sha256.clone(), download.size);
    download
        .file
        .persist(&final_path)
        .map_err(|e| fetch_error(uri, e))?;
    Ok(FetchedArtifact {
        path: final_path,
        sha256,
        size,
    })
}

/// A download written to a temporary file, which is removed when this is dropped (an
/// error, a cancel) unless [`persist`](Self::persist) moved it into place.
#[derive(Debug)]
pub(crate) struct PartialFile {
    path: PathBuf,
    kept: bool,
}

impl PartialFile {
    /// Renames the file to `to` (same file system), completing the download.
    pub(crate) fn persist(mut self, to: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.kept {
            // Synchronous: a dropped future gets no chance to await.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A complete, verified download, still under its temporary name.
#[derive(Debug)]
pub(crate) struct Download {
    /// The temporary file.
    pub(crate) file: PartialFile,
    /// sha256 of the content, 64 lower-case hex digits.
    pub(crate) sha256: String,
    /// Size in bytes.
    pub(crate) size: u64,
    /// What the store said about the object when serving it.
    pub(crate) meta: object_store::ObjectMeta,
}

/// A temporary name beside `final_path` that no concurrent download shares.
pub(crate) fn partial_path(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(
        ".{name}.{}.partial",
        crate::store::fsio::unique_suffix()
    ))
}

/// Downloads `uri` into `partial` (whose directory must exist) while hashing it, checking
/// its length against what the store announced and its digest against `expected_sha256`.
/// On any error, or when the future is dropped, nothing is left at `partial`.
pub(crate) async fn download(
    uri: &str,
    expected_sha256: Option<&str>,
    partial: PathBuf,
) -> Result<Download, ArtifactError> {
    let Opened { store, path, .. } = open(uri)?;
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| fetch_error(uri, e))?;
    let guard = PartialFile {
        path: partial,
        kept: false,
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let staging_error = |e: std::io::Error| object_store::Error::Generic {
        store: "staging",
        source: Box::new(e),
    };
    let result = async {
        let got = store
            .get_opts(&path, object_store::GetOptions::default())
            .await?;
        let (meta, announced) = (got.meta.clone(), got.range.end - got.range.start);
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(staging_error)?;
        }
        file.flush().await.map_err(staging_error)?;
        // A connection closed early may end the stream without an error on some stores.
        if size != announced {
            return Err(object_store::Error::Generic {
                store: "download",
                source: format!("the download ended after {size} of {announced} bytes").into(),
            });
        }
        Ok::<_, object_store::Error>(meta)
    }
    .await;
    drop(file);
    let meta = result.map_err(|e| fetch_error(uri, e))?;
    let actual = hex::encode(hasher.finalize());
    if let Some(expected) = expected_sha256 {
        if !expected.eq_ignore_ascii_case(&actual) {
            return Err(ArtifactError::ChecksumMismatch {
                uri: redact_uri(uri),
                expected: expected.to_ascii_lowercase(),
                actual,
            });
        }
    }
    Ok(Download {
        file: guard,
        sha256: actual,
        size,
        meta,
    })
}

/// What the store says about `uri` now (size, ETag, last modified), without its content.
pub(crate) async fn head(uri: &str) -> Result<object_store::ObjectMeta, ArtifactError> {
    let Opened { store, path, .. } = open(uri)?;
    store
        .get_opts(
            &path,
            object_store::GetOptions {
                head: true,
                ..Default::default()
            },
        )
        .await
        .map(|got| got.meta)
        .map_err(|e| fetch_error(uri, e))
}

/// A URL and the store serving it.
struct Opened {
    url: Url,
    store: std::sync::Arc<dyn ObjectStore>,
    path: StorePath,
}

/// The URL and the store serving `uri`, or why not; reasons are shown redacted.
fn open(uri: &str) -> Result<Opened, ArtifactError> {
    let shown = redact_uri(uri);
    // Reasons may quote the URL (with its token): show them redacted too.
    let unsupported = |reason: String| ArtifactError::Unsupported {
        uri: shown.clone(),
        reason: reason.replace(uri, &shown),
    };
    let url = to_url(uri).map_err(unsupported)?;
    let (store, path) = store::for_url(&url).map_err(unsupported)?;
    Ok(Opened { url, store, path })
}

fn fetch_error(uri: &str, e: impl std::error::Error + Send + Sync + 'static) -> ArtifactError {
    ArtifactError::Fetch {
        uri: redact_uri(uri),
        source: Box::new(e),
    }
}

/// Accepts URLs and absolute local paths (as `file://`).
fn to_url(uri: &str) -> Result<Url, String> {
    if uri.starts_with('/') {
        return Url::from_file_path(uri).map_err(|()| format!("'{uri}' is not a usable path"));
    }
    Url::parse(uri).map_err(|e| format!("not a URL ({e})"))
}

/// A local name unique per URL (hash of the URL, without its query) that keeps the file
/// name readable in the staging folder.
fn local_name(url: &Url) -> String {
    let mut without_query = url.clone();
    without_query.set_query(None);
    let digest = hex::encode(Sha256::digest(url.as_str().as_bytes()));
    let base = without_query
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| !s.is_empty())
        .unwrap_or("artifact");
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}-{safe}", &digest[..16])
}
