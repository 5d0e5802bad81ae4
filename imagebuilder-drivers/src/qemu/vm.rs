//! One QEMU VM: its process, disk, seed and SSH guest.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use imagebuilder_core::host::{BuildVm, CapturedDisk, Guest, HostError, VmAccess};
use imagebuilder_core::template::model::DiskFormat;
use tokio::process::Child;

use super::guest::QemuGuest;
use super::lease::Lease;
use super::socket::SocketFile;
use super::{disk, qmp, QemuConfig};
use crate::vmkit::console::ConsoleTail;
use crate::vmkit::power::{PowerOff, PowerSwitch};
use crate::vmkit::seed::Seed;
use crate::vmkit::uplink::Uplink;

pub(crate) struct QemuVm {
    pub(crate) id: String,
    pub(crate) config: Arc<QemuConfig>,
    pub(crate) child: Option<Child>,
    pub(crate) guest: QemuGuest,
    pub(crate) dir: PathBuf,
    pub(crate) overlay: PathBuf,
    pub(crate) base_format: DiskFormat,
    pub(crate) virtual_size: u64,
    /// Removed with the VM, kept with a kept VM.
    pub(crate) qmp: SocketFile,
    pub(crate) seed: Seed,
    pub(crate) ssh_port: u16,
    /// The isolated network's helpers; stopped with the VM, kept with a kept VM.
    pub(crate) uplink: Option<Uplink>,
    pub(crate) tail: ConsoleTail,
    /// Held while this process owns the VM; dropped without release it is stale, and the
    /// next reconcile cleans up.
    pub(crate) lease: Option<Lease>,
}

/// QEMU's process and QMP socket: what stops the VM.
struct QemuPower<'a> {
    child: &'a mut Option<Child>,
    qmp: &'a Path,
}

#[async_trait]
impl PowerSwitch for QemuPower<'_> {
    async fn stopped_within(&mut self, limit: Duration) -> Result<bool, HostError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(true);
        };
        Ok(matches!(
            tokio::time::timeout(limit, child.wait()).await,
            Ok(Ok(_))
        ))
    }

    async fn press_power_button(&mut self) -> Result<(), HostError> {
        // QMP may already be gone with a QEMU that is exiting; the wait that follows tells.
        let _ = qmp::command(self.qmp, "system_powerdown").await;
        Ok(())
    }

    async fn force_stop(&mut self) -> Result<(), HostError> {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        Ok(())
    }
}

impl QemuVm {
    fn power(&mut self) -> QemuPower<'_> {
        QemuPower {
            child: &mut self.child,
            qmp: self.qmp.path(),
        }
    }
}

#[async_trait]
impl BuildVm for QemuVm {
    fn id(&self) -> &str {
        &self.id
    }

    fn guest(&self) -> &dyn Guest {
        &self.guest
    }

    fn access(&self) -> VmAccess {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .map_or_else(|| "?".to_owned(), |p| p.to_string());
        VmAccess {
            how: self
                .seed
                .ssh_command(&self.config.build_user, "127.0.0.1", self.ssh_port),
            // The network helpers exit with QEMU; their dir stays.
            cleanup: format!(
                "kill {pid}; rm -rf {} {}{}",
                self.dir.display(),
                self.qmp.path().display(),
                self.uplink
                    .as_ref()
                    .map(|u| format!(" {}", u.dir().display()))
                    .unwrap_or_default()
            ),
        }
    }

    /// Removes the build user and powers the guest off (flushing its disks), then ACPI
    /// power-down, then quits.
    async fn shutdown(&mut self) -> Result<(), HostError> {
        PowerOff {
            vm_id: &self.id,
            guest: &self.guest,
            build_user: &self.config.build_user,
            timeout: self.config.shutdown_timeout,
            tail: &self.tail,
        }
        .run(&mut QemuPower {
            child: &mut self.child,
            qmp: self.qmp.path(),
        })
        .await
    }

    async fn capture(&mut self, destination: &Path) -> Result<CapturedDisk, HostError> {
        if !self.power().stopped_within(Duration::ZERO).await? {
            return Err(HostError::failed(
                "capture the disk",
                "the VM is still running; shut it down first",
            ));
        }
        let format = disk::flatten(
            &self.config.qemu_img,
            &self.overlay,
            self.base_format,
            destination,
        )
        .await?;
        Ok(CapturedDisk {
            path: destination.to_path_buf(),
            format,
            virtual_size: self.virtual_size,
        })
    }

    async fn destroy(mut self: Box<Self>) -> Result<(), HostError> {
        self.power().force_stop().await?;
        if let Some(mut uplink) = self.uplink.take() {
            let _ = tokio::task::spawn_blocking(move || uplink.stop()).await;
        }
        let result = match tokio::fs::remove_dir_all(&self.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(HostError::Failed {
                operation: format!("remove {}", self.dir.display()),
                source: Box::new(e),
            }),
        };
        // On failure the lease stays, unlocked: the next reconcile retries.
        if result.is_ok() {
            if let Some(lease) = self.lease.take() {
                lease.release();
            }
        }
        result
    }

    fn keep(mut self: Box<Self>) -> VmAccess {
        let access = self.access();
        self.qmp.keep();
        if let Some(uplink) = self.uplink.take() {
            uplink.keep();
        }
        // Kept for a person: no reconcile may take it away.
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
        // The handle kills QEMU when dropped; a kept VM must outlive it.
        if let Some(child) = self.child.take() {
            std::mem::forget(child);
        }
        access
    }
}
