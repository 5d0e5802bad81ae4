//! Advisory file locks (`flock` on Unix, `LockFileEx` on Windows) through `std::fs::File`.
//!
//! A lock is held by an open file and released when it is closed, so a process that crashes
//! releases every lock it held: nothing stale is ever left behind. Each acquisition opens the
//! file anew, so two stores in one process exclude each other as two processes do.
//!
//! Lock files are never removed: removing one while another process waits on it would let
//! that process lock an unlinked file while a third locks the new one.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use super::StoreError;

/// A held lock; released on drop.
#[derive(Debug)]
pub struct FileLock {
    // Closing the file releases the lock.
    _file: File,
}

/// What trying to lock an existing file found.
enum Existing {
    /// No such file.
    Gone,
    /// Someone holds it.
    Held,
    /// Ours now.
    Locked(FileLock),
}

#[derive(Clone, Copy)]
enum Mode {
    Shared,
    Exclusive,
}

impl FileLock {
    /// Waits for an exclusive lock.
    pub fn exclusive(path: &Path) -> Result<Self, StoreError> {
        Self::acquire(path, Mode::Exclusive)
    }

    /// Waits for a shared lock.
    pub fn shared(path: &Path) -> Result<Self, StoreError> {
        Self::acquire(path, Mode::Shared)
    }

    /// Takes an exclusive lock if nobody holds the file; `None` when someone does.
    pub fn try_exclusive(path: &Path) -> Result<Option<Self>, StoreError> {
        Self::try_acquire(path, Mode::Exclusive)
    }

    /// Takes an exclusive lock on the existing file `path` if nobody holds it; `None` when
    /// someone does or the file is gone (it is never created).
    pub fn try_exclusive_existing(path: &Path) -> Result<Option<Self>, StoreError> {
        Ok(match Self::try_lock_existing(path)? {
            Existing::Locked(lock) => Some(lock),
            Existing::Gone | Existing::Held => None,
        })
    }

    /// Takes a shared lock unless someone holds the file exclusively; `None` when someone does.
    pub fn try_shared(path: &Path) -> Result<Option<Self>, StoreError> {
        Self::try_acquire(path, Mode::Shared)
    }

    /// Whether the locked file is still the one at `path`. A lock file that another holder
    /// removed (and someone recreated) no longer excludes anyone; lock again when this says
    /// `false`.
    pub fn is_at(&self, path: &Path) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            match (self._file.metadata(), std::fs::metadata(path)) {
                (Ok(held), Ok(there)) => held.dev() == there.dev() && held.ino() == there.ino(),
                _ => false,
            }
        }
        #[cfg(not(unix))]
        {
            path.exists()
        }
    }

    /// Whether someone holds an exclusive lock on the existing file `path`; a missing file is
    /// held by nobody (and is not created).
    pub fn is_held(path: &Path) -> Result<bool, StoreError> {
        // A lock we could take is released at once, when it drops.
        Ok(matches!(Self::try_lock_existing(path)?, Existing::Held))
    }

    /// Opens the existing file `path` (never creating it) and tries an exclusive lock.
    fn try_lock_existing(path: &Path) -> Result<Existing, StoreError> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Gone),
            Err(e) => return Err(StoreError::io("open lock file", path, e)),
        };
        match file.try_lock() {
            Ok(()) => Ok(Existing::Locked(Self { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(Existing::Held),
            Err(TryLockError::Error(e)) => Err(StoreError::io("lock", path, e)),
        }
    }

    fn open(path: &Path) -> Result<File, StoreError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StoreError::io("open lock file", path, e))
    }

    fn acquire(path: &Path, mode: Mode) -> Result<Self, StoreError> {
        let file = Self::open(path)?;
        match mode {
            Mode::Shared => file.lock_shared(),
            Mode::Exclusive => file.lock(),
        }
        .map_err(|e| StoreError::io("lock", path, e))?;
        Ok(Self { _file: file })
    }

    fn try_acquire(path: &Path, mode: Mode) -> Result<Option<Self>, StoreError> {
        let file = Self::open(path)?;
        let result = match mode {
            Mode::Shared => file.try_lock_shared(),
            Mode::Exclusive => file.try_lock(),
        };
        match result {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(StoreError::io("lock", path, e)),
        }
    }
}
