//! Everything transient a run creates, and its cleanup on every path.

use std::path::PathBuf;

use crate::host::{BuildVm, HostError, VmAccess};

/// The VMs and files of one run. Whatever is still here when it is dropped (a run future
/// dropped mid-way, a panic) is destroyed in the background, so nothing leaks.
pub(super) struct Resources {
    pub(super) build_vm: Option<Box<dyn BuildVm>>,
    pub(super) validation_vm: Option<Box<dyn BuildVm>>,
    pub(super) work_dir: PathBuf,
    /// Set once a VM is kept: its files live in the work dir.
    keep_work_dir: bool,
}

/// What cleanup did.
pub(super) struct Cleanup {
    pub(super) kept: Option<VmAccess>,
    pub(super) errors: Vec<String>,
}

impl Resources {
    pub(super) fn new(work_dir: PathBuf) -> Self {
        Self {
            build_vm: None,
            validation_vm: None,
            work_dir,
            keep_work_dir: false,
        }
    }

    /// Destroys a VM now, reporting a failure as text (cleanup goes on regardless).
    pub(super) async fn destroy(vm: Option<Box<dyn BuildVm>>) -> Result<(), String> {
        let Some(vm) = vm else { return Ok(()) };
        let id = vm.id().to_owned();
        vm.destroy().await.map_err(|e: HostError| {
            format!("failed to destroy VM {id}: {}", crate::error_chain(&e))
        })
    }

    /// Destroys every VM except `keep` (a failed phase's VM under `errorHandling: abort`), and
    /// removes the work dir unless a VM was kept.
    pub(super) async fn cleanup(&mut self, keep: Option<Box<dyn BuildVm>>) -> Cleanup {
        let mut errors = Vec::new();
        for vm in [self.build_vm.take(), self.validation_vm.take()] {
            if let Err(e) = Self::destroy(vm).await {
                errors.push(e);
            }
        }
        let kept = keep.map(|vm| vm.keep());
        self.keep_work_dir = kept.is_some();
        if !self.keep_work_dir {
            if let Err(e) = tokio::fs::remove_dir_all(&self.work_dir).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    errors.push(format!("failed to remove {}: {e}", self.work_dir.display()));
                }
            }
        }
        Cleanup { kept, errors }
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        let vms: Vec<Box<dyn BuildVm>> = [self.build_vm.take(), self.validation_vm.take()]
            .into_iter()
            .flatten()
            .collect();
        let work_dir = (!self.keep_work_dir).then(|| self.work_dir.clone());
        if vms.is_empty() {
            if let Some(dir) = work_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            return;
        }
        let cleanup = async move {
            for vm in vms {
                if let Err(e) = Resources::destroy(Some(vm)).await {
                    tracing::warn!("{e}");
                }
            }
            if let Some(dir) = work_dir {
                let _ = tokio::fs::remove_dir_all(dir).await;
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(cleanup);
            }
            Err(_) => tracing::error!(
                "a run was dropped outside a tokio runtime; its VMs could not be destroyed"
            ),
        }
    }
}
