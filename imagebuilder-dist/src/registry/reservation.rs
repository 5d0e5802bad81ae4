//! Claims on a name, held as a lock on a `.pending` file.
//!
//! A claim lives as long as its holder: a process that dies releases its locks, so a
//! `.pending` file nobody holds is a leftover anyone may take over.

use std::fs;
use std::path::{Path, PathBuf};

use imagebuilder_core::store::lock::FileLock;

use super::RegistryError;

/// A held claim; dropping it removes the pending file and releases the lock.
#[derive(Debug)]
pub(super) struct Reservation {
    path: PathBuf,
    // Released after the file is removed (fields drop after `Drop::drop`).
    _lock: FileLock,
}

impl Reservation {
    /// Claims `path` unless someone holds it (`None` then).
    pub(super) fn try_take(path: &Path) -> Result<Option<Self>, RegistryError> {
        loop {
            let Some(lock) = FileLock::try_exclusive(path)? else {
                return Ok(None);
            };
            // The holder before us may have removed the file between our open and our lock;
            // a lock on a removed file claims nothing, so take the file that is there now.
            if lock.is_at(path) {
                return Ok(Some(Self {
                    path: path.to_path_buf(),
                    _lock: lock,
                }));
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The current time as RFC 3339, for the records' timestamps.
pub(super) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
