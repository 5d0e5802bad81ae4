//! Downloading one artifact while hashing it.

use std::path::{Path, PathBuf};

use futures::StreamExt;
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
    let shown = redact_uri(uri);
    // Reasons may quote the URL (with its token): show them redacted too.
    let unsupported = |reason: String| ArtifactError::Unsupported {
        uri: shown.clone(),
        reason: reason.replace(uri, &shown),
    };
    let url = to_url(uri).map_err(unsupported)?;
    let (store, path) = store::for_url(&url).map_err(unsupported)?;
    let fetch_error = |source: Box<dyn std::error::Error + Send + Sync>| ArtifactError::Fetch {
        uri: shown.clone(),
        source,
    };

    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| fetch_error(Box::new(e)))?;
    let final_path = dir.join(local_name(&url));
    let partial = final_path.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| fetch_error(Box::new(e)))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let result = async {
        let mut stream = store
            .get_opts(&path, object_store::GetOptions::default())
            .await?
            .into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: "staging",
                    source: Box::new(e),
                })?;
        }
        file.flush()
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "staging",
                source: Box::new(e),
            })?;
        Ok::<(), object_store::Error>(())
    }
    .await;
    drop(file);
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(fetch_error(Box::new(e)));
    }
    let actual = hex::encode(hasher.finalize());
    if let Some(expected) = expected_sha256 {
        if !expected.eq_ignore_ascii_case(&actual) {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(ArtifactError::ChecksumMismatch {
                uri: shown,
                expected: expected.to_ascii_lowercase(),
                actual,
            });
        }
    }
    tokio::fs::rename(&partial, &final_path)
        .await
        .map_err(|e| fetch_error(Box::new(e)))?;
    Ok(FetchedArtifact {
        path: final_path,
        sha256: actual,
        size,
    })
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
