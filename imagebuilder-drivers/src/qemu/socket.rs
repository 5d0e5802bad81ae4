//! The QMP socket file, which lives outside the VM's dir (UNIX socket paths must be shorter
//! than 108 bytes) and so needs its own cleanup.

use std::path::{Path, PathBuf};

/// Removes the socket file when dropped (any path: success, error, cancel), unless the VM is
/// kept for debugging.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    keep: bool,
}

impl SocketFile {
    /// The socket of the VM in `vm_dir`, in the short `socket_dir`, named after the VM's dir.
    pub(crate) fn for_vm(socket_dir: &Path, vm_dir: &Path) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        vm_dir.hash(&mut hasher);
        Self {
            path: socket_dir.join(format!("imagebuilder-{:016x}.qmp", hasher.finish())),
            keep: false,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the file for a VM that keeps running.
    pub(crate) fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
