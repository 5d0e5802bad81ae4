//! The sha256 of a local file, remembered by what its metadata says about its content, so
//! a 10 GiB base is hashed once and not on every build.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SourceStageError;
use crate::artifacts::sha256_file;
use crate::store::fsio;

/// What was remembered about one file: its digest and the metadata it was taken under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DigestMemo {
    path: PathBuf,
    stamp: FileStamp,
    sha256: String,
}

/// The metadata that changes when the content does. mtime alone can be set back (`touch
/// -r`, `rsync -t`) over new content; on Unix the inode and ctime, which no user can set,
/// change too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileStamp {
    size: u64,
    mtime_ns: i128,
    #[serde(default)]
    inode: u64,
    #[serde(default)]
    ctime_ns: i128,
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        let mtime_ns = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        #[cfg(unix)]
        let (inode, ctime_ns) = {
            use std::os::unix::fs::MetadataExt;
            (
                metadata.ino(),
                i128::from(metadata.ctime()) * 1_000_000_000 + i128::from(metadata.ctime_nsec()),
            )
        };
        #[cfg(not(unix))]
        let (inode, ctime_ns) = (0, 0);
        Self {
            size: metadata.len(),
            mtime_ns,
            inode,
            ctime_ns,
        }
    }
}

/// The sha256 of `path` and whether it came from the memo in `memo_dir` (no read of the
/// content). A fresh digest is remembered, written atomically; a memo that cannot be
/// written only costs a rehash next time.
pub(super) async fn digest_of(
    memo_dir: &Path,
    path: &Path,
) -> Result<(String, bool), SourceStageError> {
    let read_error = |source| SourceStageError::Read {
        path: path.to_path_buf(),
        source,
    };
    let stamp = FileStamp::of(&tokio::fs::metadata(path).await.map_err(read_error)?);
    let memo_path = memo_dir.join(format!("{}.json", memo_key(path)));
    if let Some(memo) = read_memo(&memo_path) {
        if memo.path == path && memo.stamp == stamp {
            return Ok((memo.sha256, true));
        }
    }
    let (sha256, _) = sha256_file(path).await.map_err(read_error)?;
    // Changed while it was read: the digest may be of neither version, so do not keep it.
    let after = FileStamp::of(&tokio::fs::metadata(path).await.map_err(read_error)?);
    if after == stamp {
        remember(memo_dir, path, &sha256).await;
    }
    Ok((sha256, false))
}

/// Remembers `sha256` as the digest of `path` as it is now (a download just verified).
pub(super) async fn remember(memo_dir: &Path, path: &Path, sha256: &str) {
    let Ok(metadata) = tokio::fs::metadata(path).await else {
        return;
    };
    let memo = DigestMemo {
        path: path.to_path_buf(),
        stamp: FileStamp::of(&metadata),
        sha256: sha256.to_owned(),
    };
    let memo_path = memo_dir.join(format!("{}.json", memo_key(path)));
    let written = tokio::task::spawn_blocking(move || {
        fsio::create_dir_all(memo_path.parent().unwrap_or(Path::new(".")))?;
        fsio::write_json(&memo_path, &memo)
    })
    .await;
    if let Ok(Err(e)) = written {
        tracing::warn!(
            "cannot remember the digest of {}: {}",
            path.display(),
            crate::error_chain(&e)
        );
    }
}

fn read_memo(memo_path: &Path) -> Option<DigestMemo> {
    let bytes = fsio::read_optional(memo_path).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// One file name per source path, whatever characters the path holds.
fn memo_key(path: &Path) -> String {
    hex::encode(Sha256::digest(path.as_os_str().as_encoded_bytes()))[..32].to_owned()
}
