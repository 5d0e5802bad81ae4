//! Making a resolved source a verified local file before any VM boots: a local base with a
//! digest is hashed (once: the digest is remembered by path, size and mtime), a remote one
//! (`http(s)://`, `s3://`, `az://`, `gs://`) is downloaded into a content-addressed cache.
//!
//! The cache directory holds:
//!
//! | path | what |
//! |---|---|
//! | `objects/SHA256` | a downloaded source, complete and verified (a download is written to a temporary `.partial` name beside it and renamed only then) |
//! | `digests/KEY.json` | the sha256 of a local file (a source, or an object above) and the size, mtime, inode and ctime it was taken at |
//! | `urls/KEY.json` | for a remote source without a digest: the object its URL served and the size, ETag and Last-Modified it had then; reused while a HEAD reports the same |
//!
//! Every file is written atomically; a failed or cancelled download leaves nothing behind.
//! Several engines, in one process or several, may share the directory.

mod digest;
mod remote;

use std::path::{Path, PathBuf};

use super::BaseDisk;
use crate::artifacts::{redact_uri, ArtifactError};
use crate::template::rules::is_sha256_hex;

/// Where verified sources are kept between builds.
///
/// # Examples
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use imagebuilder_core::source::{BaseDisk, SourceCache, Staging};
/// use imagebuilder_core::template::model::{DiskFormat, HyperVGeneration, OsType, SecurityType};
///
/// let dir = std::env::temp_dir().join(format!("source-cache-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let base = dir.join("base.raw");
/// std::fs::write(&base, b"disk").unwrap();
/// let disk = BaseDisk {
///     location: base.display().to_string(),
///     format: DiskFormat::Raw,
///     virtual_size: 0,
///     // sha256 of b"disk"
///     sha256: Some("1044dec7206e8d7c9fbb4ae8f766668406d2567fc7fc1a160a9d4700fcf8f8e9".into()),
///     os_type: OsType::Linux,
///     hyper_v_generation: HyperVGeneration::V1,
///     security_type: SecurityType::Standard,
///     exact_version: None,
/// };
/// let cache = SourceCache::new(dir.join("cache"));
/// assert_eq!(cache.stage(&disk).await.unwrap().staging, Staging::Hashed);
/// // The next build reads only the file's metadata.
/// assert_eq!(cache.stage(&disk).await.unwrap().staging, Staging::Remembered);
/// std::fs::write(&base, b"DISK").unwrap();
/// let err = cache.stage(&disk).await.unwrap_err();
/// assert!(err.to_string().starts_with("sha256 mismatch for"), "{err}");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCache {
    dir: PathBuf,
}

/// A source as a verified local file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StagedSource {
    /// The disk, its `location` a local path: as given for a local source, the cached copy
    /// for a remote one.
    pub disk: BaseDisk,
    /// Its sha256, when it was checked or downloaded; none for a local file without one.
    pub sha256: Option<String>,
    /// What staging it took.
    pub staging: Staging,
}

/// How a source became a local, verified file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Staging {
    /// A local file without a digest: used as it is.
    Unchecked,
    /// A local file, hashed now.
    Hashed,
    /// A local file whose digest was remembered from an earlier build (unchanged since).
    Remembered,
    /// A remote source, downloaded now.
    Downloaded,
    /// A remote source the cache held already.
    Cached,
}

/// A source could not be made a verified local file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceStageError {
    /// The expected digest is not a sha256.
    #[error("the source {location} names sha256 '{value}'; expected 64 hex digits")]
    InvalidDigest {
        /// The source (redacted).
        location: String,
        /// The digest given.
        value: String,
    },
    /// A local source could not be read.
    #[error("cannot read the source {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The cache could not be written.
    #[error("cannot write {} in the source cache", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A local source is not what its digest says.
    #[error("sha256 mismatch for {}: expected {expected}, got {actual}", path.display())]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// The digest the template or environment names.
        expected: String,
        /// The file's digest.
        actual: String,
    },
    /// A remote source could not be downloaded or is not what its digest says (the URL is
    /// shown redacted).
    #[error(transparent)]
    Download(#[from] ArtifactError),
}

impl SourceCache {
    /// A cache in `dir`, made when first written.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `disk` as a verified local file: a local path is checked against `disk.sha256` when
    /// it has one, a URL downloaded (or found in the cache) and checked.
    ///
    /// # Errors
    /// [`SourceStageError`] names the file or URL (redacted) and, for a mismatch, the
    /// expected and actual digest.
    ///
    /// # Cancellation
    /// Dropping the future removes a download in progress; the cache keeps only complete,
    /// verified files.
    pub async fn stage(&self, disk: &BaseDisk) -> Result<StagedSource, SourceStageError> {
        if let Some(value) = disk.sha256.as_deref().filter(|v| !is_sha256_hex(v)) {
            return Err(SourceStageError::InvalidDigest {
                location: redact_uri(&disk.location),
                value: value.to_owned(),
            });
        }
        let expected = disk.sha256.as_deref().map(str::to_ascii_lowercase);
        // Local sources keep their location as written: the hosts read it as before.
        let (location, sha256, staging) = match local_path(&disk.location) {
            Some(path) => match &expected {
                None => (disk.location.clone(), None, Staging::Unchecked),
                Some(expected) => {
                    let (actual, remembered) = digest::digest_of(&self.memo_dir(), &path).await?;
                    if &actual != expected {
                        return Err(SourceStageError::ChecksumMismatch {
                            path,
                            expected: expected.clone(),
                            actual,
                        });
                    }
                    let staging = if remembered {
                        Staging::Remembered
                    } else {
                        Staging::Hashed
                    };
                    (disk.location.clone(), Some(actual), staging)
                }
            },
            None => {
                let (path, sha256, staging) =
                    self.remote(&disk.location, expected.as_deref()).await?;
                (path.display().to_string(), Some(sha256), staging)
            }
        };
        Ok(StagedSource {
            disk: BaseDisk {
                location,
                sha256: sha256.clone().or_else(|| disk.sha256.clone()),
                ..disk.clone()
            },
            sha256,
            staging,
        })
    }

    fn memo_dir(&self) -> PathBuf {
        self.dir.join("digests")
    }
}

/// The local file a location names: an absolute path or a `file://` URL; `None` for a
/// URL of any other scheme. Relative paths stay paths, for the hosts to refuse by name.
fn local_path(location: &str) -> Option<PathBuf> {
    if location.starts_with('/') {
        return Some(PathBuf::from(location));
    }
    match url::Url::parse(location) {
        Ok(url) if url.scheme() == "file" => url.to_file_path().ok(),
        Ok(_) => None,
        Err(_) => Some(PathBuf::from(location)),
    }
}
