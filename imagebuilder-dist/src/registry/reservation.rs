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
    /// Whether dropping the claim removes the file (else it stays, for the next holder).
    remove_on_drop: bool,
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
                    remove_on_drop: true,
                    _lock: lock,
                }));
            }
        }
    }

    /// Takes over the existing claim at `path` if its holder is gone (a dead process's
    /// leftover): `None` when someone holds it, or when the file is gone or was replaced
    /// meanwhile (its holder finished). Never creates the file.
    pub(super) fn take_over(path: &Path) -> Result<Option<Self>, RegistryError> {
        let Some(lock) = FileLock::try_exclusive_existing(path)? else {
            return Ok(None);
        };
        Ok(lock.is_at(path).then(|| Self {
            path: path.to_path_buf(),
            remove_on_drop: false,
            _lock: lock,
        }))
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the pending file when dropped (the default).
    pub(super) fn remove_file_on_drop(&mut self) {
        self.remove_on_drop = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The current time as RFC 3339, for the records' timestamps.
pub(super) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
