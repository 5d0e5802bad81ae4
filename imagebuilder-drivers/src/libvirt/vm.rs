//! One libvirt VM: its domain and volumes, its SSH guest.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use imagebuilder_core::host::{BuildVm, CapturedDisk, Guest, HostError, VmAccess};
use imagebuilder_core::template::model::DiskFormat;
use virt::domain::Domain;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;

use super::conn::{blocking, failed};
use super::provision::is_running;
use super::resources::{self, Resources, Role};
use super::{storage, xml, LibvirtConfig};
use crate::ssh::SshGuest;
use crate::vmkit::console::ConsoleTail;
use crate::vmkit::power::{PowerOff, PowerSwitch};
use crate::vmkit::seed::Seed;

pub(crate) struct LibvirtVm {
    pub(crate) id: String,
    pub(crate) config: Arc<LibvirtConfig>,
    /// `None` once removed or kept.
    pub(crate) resources: Option<Resources>,
    pub(crate) guest: SshGuest,
    pub(crate) dir: PathBuf,
    pub(crate) seed: Seed,
    pub(crate) address: String,
    pub(crate) ssh_port: u16,
    pub(crate) tail: ConsoleTail,
    pub(crate) capture_format: DiskFormat,
    pub(crate) virtual_size: u64,
}

impl LibvirtVm {
    fn resources(&self) -> Result<&Resources, HostError> {
        self.resources
            .as_ref()
            .ok_or_else(|| HostError::failed("use the VM", "it was already removed"))
    }

    /// Waits up to `limit` for the domain to stop; true when it did.
    async fn stopped_within(&self, limit: Duration) -> Result<bool, HostError> {
        let conn = self.resources()?.conn.clone();
        let name = resources::domain_name(&self.id);
        let deadline = Instant::now() + limit;
        loop {
            if !is_running(&conn, &name).await {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Calls `f` with the domain, on a blocking thread; a domain already gone is fine.
    async fn with_domain(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Domain) -> Result<(), virt::error::Error> + Send + 'static,
    ) -> Result<(), HostError> {
        let conn = self.resources()?.conn.clone();
        let name = resources::domain_name(&self.id);
        blocking(operation, move || {
            match Domain::lookup_by_name(conn.get(), &name).and_then(|d| f(&d)) {
                Ok(()) => Ok(()),
                Err(e) if super::conn::is_gone(&e) => Ok(()),
                Err(e) => Err(failed(operation, e)),
            }
        })
        .await
    }
}

/// The domain, seen as what stops the VM.
struct LibvirtPower<'a> {
    vm: &'a LibvirtVm,
}

#[async_trait]
impl PowerSwitch for LibvirtPower<'_> {
    async fn stopped_within(&mut self, limit: Duration) -> Result<bool, HostError> {
        self.vm.stopped_within(limit).await
    }

    async fn press_power_button(&mut self) -> Result<(), HostError> {
        self.vm
            .with_domain("send ACPI power-down", |d| d.shutdown().map(drop))
            .await
    }

    async fn force_stop(&mut self) -> Result<(), HostError> {
        self.vm
            .with_domain("stop the domain", |d| d.destroy())
            .await
    }
}

#[async_trait]
impl BuildVm for LibvirtVm {
    fn id(&self) -> &str {
        &self.id
    }

    fn guest(&self) -> &dyn Guest {
        &self.guest
    }

    fn access(&self) -> VmAccess {
        let uri = shell_quote(&self.config.uri);
        let pool = shell_quote(&self.config.pool);
        let mut cleanup = format!(
            "virsh -c {uri} destroy {}",
            resources::domain_name(&self.id)
        );
        for role in Role::ALL {
            cleanup.push_str(&format!(
                "; virsh -q -c {uri} vol-delete --pool {pool} {} 2>/dev/null",
                resources::volume_name(&self.id, role)
            ));
        }
        cleanup.push_str(&format!("; rm -rf {}", self.dir.display()));
        VmAccess {
            how: self
                .seed
                .ssh_command(&self.config.build_user, &self.address, self.ssh_port),
            cleanup,
        }
    }

    /// Removes the build user and powers the guest off (flushing its disks), then ACPI
    /// power-down, then destroys.
    async fn shutdown(&mut self) -> Result<(), HostError> {
        PowerOff {
            vm_id: &self.id,
            guest: &self.guest,
            build_user: &self.config.build_user,
            timeout: self.config.shutdown_timeout,
            tail: &self.tail,
        }
        .run(&mut LibvirtPower { vm: self })
        .await
    }

    /// libvirt copies the overlay into a standalone `-capture` volume (flattening the
    /// chain), which is downloaded to `destination` and deleted.
    async fn capture(&mut self, destination: &Path) -> Result<CapturedDisk, HostError> {
        if !self.stopped_within(Duration::ZERO).await? {
            return Err(HostError::failed(
                "capture the disk",
                "the VM is still running; shut it down first",
            ));
        }
        let resources = self.resources()?;
        let (conn, pool_name, ops) = (
            resources.conn.clone(),
            resources.pool.clone(),
            resources.ops.clone(),
        );
        let vm_id = self.id.clone();
        let format = self.capture_format;
        let size = self.virtual_size;
        let target = destination.to_path_buf();
        blocking("capture the disk", move || {
            ops.run("capture the disk", || {
                let pool = StoragePool::lookup_by_name(conn.get(), &pool_name)
                    .map_err(|e| failed("find the storage pool", e))?;
                let disk =
                    StorageVol::lookup_by_name(&pool, &resources::volume_name(&vm_id, Role::Disk))
                        .map_err(|e| failed("find the VM's disk", e))?;
                let name = resources::volume_name(&vm_id, Role::Capture);
                let _ = storage::delete(&pool, &name);
                let capture = storage::clone_from(
                    &pool,
                    &name,
                    &xml::volume(&name, size, format.qemu_name(), None),
                    &disk,
                )?;
                let downloaded = storage::download(conn.get(), &capture, &target);
                let deleted = storage::delete(&pool, &name);
                downloaded?;
                deleted?;
                Ok(())
            })
        })
        .await?;
        Ok(CapturedDisk {
            path: destination.to_path_buf(),
            format,
            virtual_size: self.virtual_size,
        })
    }

    async fn destroy(mut self: Box<Self>) -> Result<(), HostError> {
        if let Some(resources) = self.resources.take() {
            resources.remove().await?;
        }
        match tokio::fs::remove_dir_all(&self.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(HostError::Failed {
                operation: format!("remove {}", self.dir.display()),
                source: Box::new(e),
            }),
        }
    }

    fn keep(mut self: Box<Self>) -> VmAccess {
        let access = self.access();
        if let Some(resources) = self.resources.take() {
            resources.keep();
        }
        access
    }
}

/// `text` quoted for a POSIX shell when it needs to be.
fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:@+=".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
