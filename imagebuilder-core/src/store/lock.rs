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

    /// Takes a shared lock unless someone holds the file exclusively; `None` when someone does.
    pub fn try_shared(path: &Path) -> Result<Option<Self>, StoreError> {
        Self::try_acquire(path, Mode::Shared)
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
