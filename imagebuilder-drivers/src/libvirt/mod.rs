//! The libvirt build host: build VMs on any libvirt hypervisor, local (`qemu:///system`,
//! `qemu:///session`) or remote (`qemu+ssh://user@host/system`).
//!
//! Per VM, everything lives in one storage pool (made on demand as a directory pool when it
//! does not exist) and is named `imagebuilder-<vm id>[-<role>]`:
//!
//! | resource | what |
//! |---|---|
//! | `-base` volume | the base disk, uploaded through a libvirt stream (never written after) |
//! | `-disk` volume | a qcow2 overlay over `-base`, grown to osDiskSizeGB |
//! | `-seed` volume | the cloud-init NoCloud seed: build user, ephemeral key, pinned host key |
//! | `-nvram` volume | Gen2 only: this VM's copy of the OVMF variables |
//! | domain | transient, from generated XML: Gen1 SeaBIOS (`pc`), Gen2 OVMF (`q35`); vCPUs and memory from vmProfile.vmSize |
//! | `-capture` volume | at capture: the overlay flattened by libvirt, then downloaded |
//!
//! SSH goes through the same communicator and pinned host key as the QEMU host: with
//! [`LibvirtNetwork::User`] to a port forwarded on the hypervisor's 127.0.0.1 (QEMU's
//! user-mode network, passed through `<qemu:commandline>`); with a named libvirt network or
//! a bridge to the address the guest got (DHCP lease, else ARP). The serial console goes
//! into the run's log through a libvirt console stream.
//!
//! Every path (success, error, cancel, panic) destroys the domain and deletes the volumes.
//! A process that dies cannot; its leftovers are found by name and removed by
//! [`LibvirtBuildHost::reconcile`], which every provision runs first: a local lease file,
//! locked while this process owns the VM, tells a crashed build's leftovers from a live one.
//!
//! Every libvirt call runs on a blocking thread, never on an async worker.
//!
//! Needs where the builds are started: libvirt's client library (`libvirt0`; `libvirt-dev`
//! to build), `qemu-img`, `ssh-keygen`, `mkfs.vfat` and `mcopy`. On the hypervisor host: a
//! libvirt daemon with the QEMU driver, and `ovmf` for Gen2.
//!
//! libvirt's `test:///default` driver (no daemon, no guest) takes the pool, the volumes and
//! the domain XML, but cannot upload or download volumes and runs no guest, so provisioning
//! fails there with [`HostError::Unsupported`] and leaves nothing behind.

mod conn;
mod console;
mod provision;
mod resources;
mod storage;
mod vm;
mod xml;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use imagebuilder_core::host::{BuildHost, BuildVm, Capabilities, HostError, ProvisionOptions};
use imagebuilder_core::template::model::DiskFormat;

pub use crate::vmkit::accel::Accelerator;
pub use crate::vmkit::sizes::{shape_of, VmShape};

use self::conn::{blocking, LazyConn};
use self::resources::{LeaseState, Removed};

/// How build VMs reach the network, and how the host reaches their SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LibvirtNetwork {
    /// QEMU's user-mode network with SSH forwarded to a free port on the hypervisor's
    /// 127.0.0.1 (needs the QEMU driver, and the hypervisor to be this machine).
    User,
    /// A libvirt network by name (e.g. `default`); the guest's address comes from its DHCP
    /// lease. The counterpart of AIB's `vnetConfig.subnetId`.
    Network(String),
    /// A host bridge by name (e.g. `br0`); the guest's address comes from the ARP table.
    Bridge(String),
}

/// How the libvirt host runs VMs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LibvirtConfig {
    /// The connection URI, e.g. `qemu:///system` or `qemu+ssh://builder@host/system`.
    pub uri: String,
    /// The storage pool every VM's volumes go in.
    pub pool: String,
    /// Where a missing pool is made (a directory on the hypervisor host). Default:
    /// `/var/lib/libvirt/images/<pool>`, or `~/.local/share/libvirt/images/<pool>` for
    /// `qemu:///session`.
    pub pool_path: Option<PathBuf>,
    /// The network of every VM.
    pub network: LibvirtNetwork,
    /// Domain type: `Kvm`, `Tcg` (domain type `qemu`), or `Auto`: KVM when the hypervisor
    /// offers it and (for a local URI) a bounded probe shows it works, else `qemu`; a driver
    /// with neither (`test:///`) gets its own type.
    pub accelerator: Accelerator,
    /// OVMF firmware code on the hypervisor host, for Gen2 images.
    pub ovmf_code: PathBuf,
    /// OVMF variables template on this machine, uploaded per VM as its nvram.
    pub ovmf_vars: PathBuf,
    /// How long a VM may take to answer SSH.
    pub boot_timeout: Duration,
    /// How long a guest may take to power off before it is forced.
    pub shutdown_timeout: Duration,
    /// vCPUs and memory for every VM, instead of the template's vmSize.
    pub shape: Option<VmShape>,
    /// Name of the build user created by the seed: a portable Linux user name
    /// (`[a-z_][a-z0-9_-]{0,31}`), else provisioning fails before any VM starts.
    pub build_user: String,
    /// The disk tool on this machine. Unused since base disks are checked and sized by our
    /// own reader; kept so configurations that set it still build.
    pub qemu_img: String,
    /// Where this machine keeps the lease files of the VMs it owns.
    pub lease_dir: PathBuf,
}

impl Default for LibvirtConfig {
    fn default() -> Self {
        let (ovmf_code, ovmf_vars) = crate::vmkit::default_ovmf();
        Self {
            uri: "qemu:///system".into(),
            pool: "imagebuilder".into(),
            pool_path: None,
            network: LibvirtNetwork::User,
            accelerator: Accelerator::Auto,
            ovmf_code,
            ovmf_vars,
            boot_timeout: Duration::from_secs(600),
            shutdown_timeout: Duration::from_secs(120),
            shape: None,
            build_user: "imagebuilder".into(),
            qemu_img: "qemu-img".into(),
            lease_dir: imagebuilder_core::store::TemplateStore::default_state_dir()
                .join("libvirt-leases"),
        }
    }
}

impl LibvirtConfig {
    /// Connects to `uri`.
    pub fn with_uri(mut self, uri: impl Into<String>) -> Self {
        self.uri = uri.into();
        self
    }

    /// Puts volumes in the pool `name`, made at `path` when missing (`None`: the default).
    pub fn with_pool(mut self, name: impl Into<String>, path: Option<PathBuf>) -> Self {
        self.pool = name.into();
        self.pool_path = path;
        self
    }

    /// Connects VMs to `network`.
    pub fn with_network(mut self, network: LibvirtNetwork) -> Self {
        self.network = network;
        self
    }

    /// Uses `accelerator` instead of choosing.
    pub fn with_accelerator(mut self, accelerator: Accelerator) -> Self {
        self.accelerator = accelerator;
        self
    }

    /// Gives every VM `shape` instead of the template's vmSize.
    pub fn with_shape(mut self, shape: VmShape) -> Self {
        self.shape = Some(shape);
        self
    }

    /// Sets how long a VM may take to answer SSH.
    pub fn with_boot_timeout(mut self, timeout: Duration) -> Self {
        self.boot_timeout = timeout;
        self
    }

    /// Keeps lease files in `dir`.
    pub fn with_lease_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.lease_dir = dir.into();
        self
    }

    /// The directory a missing pool is made at.
    fn pool_path(&self) -> String {
        if let Some(path) = &self.pool_path {
            return path.display().to_string();
        }
        let session = self.uri.trim_end_matches('/').ends_with("/session");
        match std::env::var_os("HOME") {
            Some(home) if session => PathBuf::from(home)
                .join(".local/share/libvirt/images")
                .join(&self.pool)
                .display()
                .to_string(),
            _ => format!("/var/lib/libvirt/images/{}", self.pool),
        }
    }

    /// True for URIs naming another machine (`qemu+ssh://host/system`).
    fn is_remote(&self) -> bool {
        self.uri
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'))
    }
}

/// Builds on a libvirt hypervisor.
#[derive(Debug, Clone, Default)]
pub struct LibvirtBuildHost {
    config: Arc<LibvirtConfig>,
    conn: Arc<LazyConn>,
}

/// What [`LibvirtBuildHost::reconcile`] found, by VM id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileOutput {
    /// Leftovers of builds whose process ended without cleaning up; removed now.
    pub removed: Vec<String>,
    /// VMs a live process on this machine owns; left alone.
    pub in_use: Vec<String>,
    /// VMs with no lease on this machine (another machine's builds, or VMs kept after a
    /// failure for a person to inspect); left alone.
    pub foreign: Vec<String>,
}

impl LibvirtBuildHost {
    /// A host with `config`; connects on first use.
    pub fn new(config: LibvirtConfig) -> Self {
        Self {
            config: Arc::new(config),
            conn: Arc::default(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &LibvirtConfig {
        &self.config
    }

    /// Removes the domains and volumes (named `imagebuilder-*` in the pool) of builds whose
    /// process ended without cleaning up, as told by their stale lease files on this
    /// machine; leaves live and foreign ones alone.
    ///
    /// # Errors
    /// [`HostError::Failed`] when libvirt cannot be reached or refuses a removal.
    pub async fn reconcile(&self) -> Result<ReconcileOutput, HostError> {
        let config = self.config.clone();
        let lazy = self.conn.clone();
        blocking("reconcile leftovers", move || {
            let conn = lazy.get(&config.uri)?;
            let mut ids: Vec<String> = Vec::new();
            let domains = conn
                .get()
                .list_all_domains(0)
                .map_err(|e| conn::failed("list the domains", e))?;
            for domain in &domains {
                if let Ok(name) = domain.get_name() {
                    if let Some(id) = resources::vm_of_domain(&name) {
                        ids.push(id.to_owned());
                    }
                }
            }
            if let Ok(pool) = virt::storage_pool::StoragePool::lookup_by_name(conn.get(), &config.pool) {
                for name in storage::volume_names(&pool)? {
                    if let Some(id) = resources::vm_of_volume(&name) {
                        ids.push(id.to_owned());
                    }
                }
            }
            ids.sort();
            ids.dedup();
            let mut output = ReconcileOutput::default();
            for id in ids {
                match resources::Lease::state(&config.lease_dir, &id) {
                    LeaseState::Absent => output.foreign.push(id),
                    LeaseState::Held => output.in_use.push(id),
                    LeaseState::Stale => {
                        // Take the lease, so a concurrent reconcile does not race this one.
                        let Ok(lease) = resources::Lease::acquire(&config.lease_dir, &id, &config.uri) else {
                            output.in_use.push(id);
                            continue;
                        };
                        let Removed { domain, volumes } = resources::remove_vm(&conn, &config.pool, &id)?;
                        tracing::info!(
                            "{id}: removed leftovers of a build that ended without cleaning up (domain: {domain}, volumes: {volumes:?})"
                        );
                        lease.release();
                        output.removed.push(id);
                    }
                }
            }
            Ok(output)
        })
        .await
    }
}

#[async_trait]
impl BuildHost for LibvirtBuildHost {
    fn name(&self) -> &str {
        "libvirt"
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::none();
        caps.bios = true;
        // The code is on the hypervisor host, the vars template here.
        caps.uefi = self.config.is_remote() || self.config.ovmf_code.exists();
        caps.uefi &= self.config.ovmf_vars.exists();
        caps.restart = true;
        caps.keep_on_failure = true;
        caps.base_disk_formats = vec![DiskFormat::Raw, DiskFormat::Qcow2, DiskFormat::Vhd];
        caps
    }

    async fn provision(&self, options: ProvisionOptions) -> Result<Box<dyn BuildVm>, HostError> {
        provision::provision(self, options).await
    }
}
