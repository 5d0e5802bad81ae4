//! The lock file both VM hosts keep per VM while a build owns it: locked (flock) by the live
//! process, so a lease file nobody holds is the leftover of a process that died.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use imagebuilder_core::host::HostError;

/// Creates (or opens) the lease file `path` of VM `vm_id` and locks it, failing when another
/// live process holds it. Opened close-on-exec (as std opens every file), so a VM process
/// started later never inherits the lock.
pub(crate) fn lock(path: &Path, vm_id: &str) -> Result<File, HostError> {
    let io = |e: std::io::Error| HostError::Failed {
        operation: format!("take the VM's lease {}", path.display()),
        source: Box::new(e),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(HostError::failed(
            "take the VM's lease",
            format!(
                "VM {vm_id} is in use by another process ({})",
                path.display()
            ),
        )),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}
