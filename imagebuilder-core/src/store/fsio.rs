//! Crash-safe file writes and checked reads, shared by every file-backed store (templates,
//! galleries, managed images).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// A name no other writer (thread or process) uses at the same time.
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}.{nanos}.{n}", std::process::id())
}

/// Writes `bytes` to `path` so that readers see the old content or the new, never a mix:
/// a temporary file in the same directory is written, synced and renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    replace_with(path, bytes, false)
}

/// As [`write_atomic`], for a file only its owner may read or write (mode 0600 from the
/// moment it is created, on Unix).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    replace_with(path, bytes, true)
}

fn replace_with(path: &Path, bytes: &[u8], private: bool) -> Result<(), StoreError> {
    let (dir, tmp) = write_beside(path, bytes, private)?;
    let result = fs::rename(&tmp, path).map_err(|e| StoreError::io("rename into place", path, e));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// Writes `bytes` to a new, synced temporary file beside `path`; returns the directory and
/// the temporary file. Its name ends in `.tmp`, so readers that list `*.json` never pick it
/// up.
fn write_beside<'a>(
    path: &'a Path,
    bytes: &[u8],
    private: bool,
) -> Result<(&'a Path, PathBuf), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", unique_suffix()));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut file = options
            .open(&tmp)
            .map_err(|e| StoreError::io("create", &tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| StoreError::io("write", &tmp, e))?;
        file.sync_all().map_err(|e| StoreError::io("sync", &tmp, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| (dir, tmp))
}

/// Serializes `value` as pretty JSON and writes it atomically.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StoreError> {
    write_atomic(path, &json_bytes(path, value)?)
}

/// Serializes `value` as pretty JSON and writes it atomically to a file only its owner may
/// read ([`write_private`]).
pub fn write_private_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StoreError> {
    write_private(path, &json_bytes(path, value)?)
}

/// Serializes `value` as pretty JSON into a new file at `path`, complete or not at all.
/// Returns `Ok(false)`, writing nothing, when `path` exists already: two writers racing for
/// one name never replace each other's file.
pub fn write_json_new<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<bool, StoreError> {
    let (dir, tmp) = write_beside(path, &json_bytes(path, value)?, false)?;
    // A hard link, unlike a rename, fails when the name is taken.
    let created = match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(StoreError::io("link into place", path, e)),
    };
    let _ = fs::remove_file(&tmp);
    let created = created?;
    sync_dir(dir)?;
    Ok(created)
}

/// `value` as pretty JSON with a final newline.
fn json_bytes<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| StoreError::io("serialize", path, std::io::Error::other(e)))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The entries of `dir`, none when it does not exist.
pub fn read_dir_entries(dir: &Path) -> Result<Vec<fs::DirEntry>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("list", dir, e)),
    };
    entries
        .map(|entry| entry.map_err(|e| StoreError::io("list", dir, e)))
        .collect()
}

/// Reads a file; `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("read", path, e)),
    }
}

/// Reads a JSON file that must exist; a missing or unreadable one is `Corrupt`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let bytes =
        read_optional(path)?.ok_or_else(|| StoreError::corrupt(path, "the file is missing"))?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::corrupt(path, e.to_string()))
}

/// Creates a directory (and its parents).
pub fn create_dir_all(path: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(path).map_err(|e| StoreError::io("create directory", path, e))
}

/// Makes a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io("sync directory", dir, e))?;
    }
    // Other systems have no portable way to sync a directory; the rename is still atomic.
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A fresh path under `tmp` for a directory being built or torn down.
pub fn tmp_path(tmp: &Path, key: &str, purpose: &str) -> PathBuf {
    tmp.join(format!("{key}.{}.{purpose}", unique_suffix()))
}
