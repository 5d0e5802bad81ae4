//! Remote sources, downloaded once into a content-addressed cache: `objects/SHA256` holds
//! each verified download, `urls/KEY.json` says which object a URL served when its source
//! names no digest.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{digest, SourceCache, SourceStageError, Staging};
use crate::artifacts::{self, redact_uri};
use crate::store::fsio;

/// What a URL served when it was downloaded: the object is reused while a HEAD reports the
/// same version of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UrlRecord {
    /// The URL, redacted: the record never holds a token.
    url: String,
    version: ObjectVersion,
    sha256: String,
}

/// How a store identifies one version of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectVersion {
    size: u64,
    e_tag: Option<String>,
    last_modified: Option<String>,
}

impl ObjectVersion {
    fn of(meta: &object_store::ObjectMeta) -> Self {
        // Stores that send no Last-Modified report the epoch.
        let last_modified =
            (meta.last_modified.timestamp() != 0).then(|| meta.last_modified.to_rfc3339());
        Self {
            size: meta.size,
            e_tag: meta.e_tag.clone(),
            last_modified,
        }
    }

    /// Size alone does not tell two versions apart.
    fn identifies(&self) -> bool {
        self.e_tag.is_some() || self.last_modified.is_some()
    }
}

impl SourceCache {
    /// The local copy of `uri`, downloaded unless the cache holds it already.
    pub(super) async fn remote(
        &self,
        uri: &str,
        expected: Option<&str>,
    ) -> Result<(PathBuf, String, Staging), SourceStageError> {
        match expected {
            Some(expected) => {
                let object = self.object_path(expected);
                if self.holds(&object, expected).await {
                    return Ok((object, expected.to_owned(), Staging::Cached));
                }
                let sha256 = self.download(uri, Some(expected)).await?.0;
                Ok((object, sha256, Staging::Downloaded))
            }
            None => self.remote_by_version(uri).await,
        }
    }

    /// A source without a digest: reused while the store reports the version downloaded.
    async fn remote_by_version(
        &self,
        uri: &str,
    ) -> Result<(PathBuf, String, Staging), SourceStageError> {
        let shown = redact_uri(uri);
        let record_path = self
            .dir
            .join("urls")
            .join(format!("{}.json", url_key(&shown)));
        let now = ObjectVersion::of(&artifacts::head(uri).await?);
        if let Some(record) = read_record(&record_path) {
            let object = self.object_path(&record.sha256);
            if now.identifies()
                && record.url == shown
                && record.version == now
                && self.holds(&object, &record.sha256).await
            {
                return Ok((object, record.sha256, Staging::Cached));
            }
        }
        let (sha256, served) = self.download(uri, None).await?;
        let record = UrlRecord {
            url: shown,
            version: served,
            sha256: sha256.clone(),
        };
        if record.version.identifies() {
            let written = tokio::task::spawn_blocking(move || {
                fsio::create_dir_all(record_path.parent().unwrap_or(Path::new(".")))?;
                fsio::write_json(&record_path, &record)
            })
            .await;
            if let Ok(Err(e)) = written {
                tracing::warn!(
                    "cannot record a source download: {}",
                    crate::error_chain(&e)
                );
            }
        }
        Ok((self.object_path(&sha256), sha256, Staging::Downloaded))
    }

    /// Downloads `uri` to `objects/SHA256`, verified; returns the digest and the version the
    /// store served. Concurrent downloads of one object each write their own temporary file;
    /// the last rename wins with the same content.
    async fn download(
        &self,
        uri: &str,
        expected: Option<&str>,
    ) -> Result<(String, ObjectVersion), SourceStageError> {
        let objects = self.dir.join("objects");
        tokio::fs::create_dir_all(&objects)
            .await
            .map_err(|source| SourceStageError::Write {
                path: objects.clone(),
                source,
            })?;
        // Beside its final name, so the rename never crosses file systems.
        let partial = artifacts::partial_path(&objects.join("download"));
        let download = artifacts::download(uri, expected, partial).await?;
        let sha256 = download.sha256.clone();
        let version = ObjectVersion::of(&download.meta);
        let object = self.object_path(&sha256);
        download
            .file
            .persist(&object)
            .map_err(|source| SourceStageError::Write {
                path: object.clone(),
                source,
            })?;
        digest::remember(&self.memo_dir(), &object, &sha256).await;
        Ok((sha256, version))
    }

    /// The cache holds a verified copy of `sha256` at `object`.
    async fn holds(&self, object: &Path, sha256: &str) -> bool {
        if !tokio::fs::try_exists(object).await.unwrap_or(false) {
            return false;
        }
        // A cached object changed since (a disk error, a hand edit) is downloaded again.
        matches!(digest::digest_of(&self.memo_dir(), object).await, Ok((actual, _)) if actual == sha256)
    }

    fn object_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("objects").join(sha256)
    }
}

fn read_record(path: &Path) -> Option<UrlRecord> {
    let bytes = fsio::read_optional(path).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// One record per URL; its query (a token that changes) is not part of it.
fn url_key(shown: &str) -> String {
    hex::encode(Sha256::digest(shown.as_bytes()))[..32].to_owned()
}
