//! The QEMU build host: real VMs on this machine (KVM when it works, else TCG).
//!
//! The base disk is checked first by our own reader: it must be the format the template
//! declares (QEMU is always told the format, never left to probe it) and must reach for
//! nothing outside itself (backing or data files), else the build fails before anything of
//! the VM exists.
//!
//! Each VM boots a copy-on-write qcow2 overlay of the base disk (the base is never written)
//! with a per-VM cloud-init NoCloud seed: a build user with an ephemeral ed25519 key and
//! passwordless sudo, and a pre-generated host key the SSH client pins. SSH is forwarded to a
//! free port on 127.0.0.1 only; the serial console goes into the run's log; QMP controls
//! power. By default ([`GuestNetwork::Isolated`]) the guest reaches the outside network but
//! nothing on this machine's loopback: QEMU runs in a network namespace of its own, with
//! slirp4netns as that namespace's way out (see [`GuestNetwork`]). Gen1 images boot with
//! SeaBIOS, Gen2 with OVMF and a per-VM copy of its variables.
//!
//! Needs on the host: `qemu-system-x86_64`, `qemu-img`, `ssh-keygen`, `mkfs.vfat` and `mcopy`
//! (Debian: qemu-system-x86, qemu-utils, openssh-client, dosfstools, mtools), `ovmf` for
//! Gen2, and for the isolated network `slirp4netns` and `unshare` (slirp4netns,
//! util-linux).

mod disk;
mod guest;
mod launch;
mod lease;
mod qmp;
mod socket;
mod vm;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use imagebuilder_core::host::{BuildHost, BuildVm, Capabilities, HostError, ProvisionOptions};
use imagebuilder_core::template::model::{DiskFormat, HyperVGeneration, OsType, VmProfile};

pub use crate::vmkit::accel::Accelerator;
pub use crate::vmkit::sizes::{shape_of, VmShape};
pub use crate::vmkit::uplink::GuestNetwork;

pub use self::lease::ReconcileOutput;

use self::launch::{disk_marker, host_reachable_netdev, spawn, uefi_vars_copy, Launch};
use self::lease::{Lease, Record};
use self::socket::SocketFile;
use self::vm::QemuVm;
use crate::ssh::{HostKey, SshGuest, SshTarget};
use crate::vmkit::console::ConsoleTail;
use crate::vmkit::inspect::inspect_base;
use crate::vmkit::sizes::shape_for;
use crate::vmkit::uplink::{self, Uplink};
use crate::vmkit::{free_port, seed};

/// How the QEMU host runs VMs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QemuConfig {
    /// The emulator.
    pub qemu_binary: String,
    /// The disk tool.
    pub qemu_img: String,
    /// KVM or TCG; `Auto` probes KVM (bounded) and falls back to TCG.
    pub accelerator: Accelerator,
    /// OVMF firmware code, for Gen2 images.
    pub ovmf_code: PathBuf,
    /// OVMF variables template, copied per VM.
    pub ovmf_vars: PathBuf,
    /// How long a VM may take to answer SSH. Stock cloud images need about 50 s under TCG here.
    pub boot_timeout: Duration,
    /// How long a guest may take to power off before it is forced.
    pub shutdown_timeout: Duration,
    /// vCPUs and memory for every VM, instead of the template's vmSize.
    pub shape: Option<VmShape>,
    /// Name of the build user created by the seed: a portable Linux user name
    /// (`[a-z_][a-z0-9_-]{0,31}`), else provisioning fails before any VM starts.
    pub build_user: String,
    /// Where QMP sockets go: UNIX socket paths must be shorter than 108 bytes, and a run's
    /// work dir is often deeper. Default: the temp dir.
    pub socket_dir: PathBuf,
    /// Where the lease files of the VMs this machine runs go: locked while a build owns its
    /// VM, they let [`QemuBuildHost::reconcile`] clean up after a build whose process died.
    /// Default: `qemu-leases` in the default state dir; the CLI uses `STATE/qemu-leases`.
    pub lease_dir: PathBuf,
    /// What the guest can reach. Default [`GuestNetwork::Isolated`]: the outside network but
    /// nothing on this machine's loopback; [`GuestNetwork::HostReachable`] is QEMU's plain
    /// user network, where a step can connect to every local service.
    pub network: GuestNetwork,
}

impl Default for QemuConfig {
    fn default() -> Self {
        let (ovmf_code, ovmf_vars) = crate::vmkit::default_ovmf();
        Self {
            qemu_binary: "qemu-system-x86_64".into(),
            qemu_img: "qemu-img".into(),
            accelerator: Accelerator::Auto,
            ovmf_code,
            ovmf_vars,
            boot_timeout: Duration::from_secs(600),
            shutdown_timeout: Duration::from_secs(120),
            shape: None,
            build_user: "imagebuilder".into(),
            socket_dir: std::env::temp_dir(),
            lease_dir: imagebuilder_core::store::TemplateStore::default_state_dir()
                .join("qemu-leases"),
            network: GuestNetwork::default(),
        }
    }
}

impl QemuConfig {
    /// Uses `accelerator` instead of probing.
    pub fn with_accelerator(mut self, accelerator: Accelerator) -> Self {
        self.accelerator = accelerator;
        self
    }

    /// Gives every VM `shape` instead of the template's vmSize.
    pub fn with_shape(mut self, shape: VmShape) -> Self {
        self.shape = Some(shape);
        self
    }

    /// Puts QMP sockets in `dir` (keep its path short).
    pub fn with_socket_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.socket_dir = dir.into();
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

    /// Chooses what the guest can reach.
    pub fn with_network(mut self, network: GuestNetwork) -> Self {
        self.network = network;
        self
    }
}

/// Builds on QEMU on this machine.
#[derive(Debug, Clone, Default)]
pub struct QemuBuildHost {
    config: Arc<QemuConfig>,
}

/// How one boot attempt ended.
enum Attempt {
    Connected(Result<SshGuest, imagebuilder_core::host::GuestError>),
    Exited(std::io::Result<std::process::ExitStatus>),
}

/// Attempts at a free SSH port before giving up (another process may take each one).
const PORT_ATTEMPTS: usize = 5;

impl QemuBuildHost {
    /// A host with `config`.
    pub fn new(config: QemuConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &QemuConfig {
        &self.config
    }

    /// Cleans up after builds whose process died with a VM running: for every lease in
    /// [`QemuConfig::lease_dir`] no live process holds, stops its QEMU (if that pid is still
    /// its QEMU) and removes its overlay, seed, keys and QMP socket. VMs of live builds, and
    /// VMs kept for a person by `errorHandling: abort`, are left alone. Every provision runs
    /// it first.
    ///
    /// # Errors
    /// [`HostError::Failed`] when the lease dir cannot be read.
    pub async fn reconcile(&self) -> Result<ReconcileOutput, HostError> {
        let dir = self.config.lease_dir.clone();
        tokio::task::spawn_blocking(move || lease::reconcile(&dir))
            .await
            .map_err(|e| HostError::failed("reconcile leftovers", e.to_string()))?
    }

    /// The vCPUs and memory for `profile`, bounded by this machine.
    fn shape(
        &self,
        profile: &VmProfile,
        generation: HyperVGeneration,
    ) -> Result<VmShape, HostError> {
        shape_for(
            self.config.shape,
            profile,
            generation,
            local_cores(),
            local_memory_mib(),
        )
    }
}

/// Total memory of this machine in MiB (from /proc/meminfo; 4 GiB when unreadable).
fn local_memory_mib() -> u32 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            u32::try_from(kib / 1024).ok()
        })
        .unwrap_or(4096)
}

/// Cores of this machine.
fn local_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

#[async_trait]
impl BuildHost for QemuBuildHost {
    fn name(&self) -> &str {
        "qemu"
    }

    fn vm_memory_mib(&self, profile: &VmProfile) -> Option<u64> {
        // Asked before the source (and so the generation) is known: the larger default.
        [HyperVGeneration::V1, HyperVGeneration::V2]
            .into_iter()
            .filter_map(|generation| self.shape(profile, generation).ok())
            .map(|shape| u64::from(shape.memory_mib))
            .max()
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::none();
        caps.bios = true;
        caps.uefi = self.config.ovmf_code.exists() && self.config.ovmf_vars.exists();
        caps.restart = true;
        caps.keep_on_failure = true;
        caps.base_disk_formats = vec![DiskFormat::Raw, DiskFormat::Qcow2, DiskFormat::Vhd];
        caps
    }

    async fn provision(&self, options: ProvisionOptions) -> Result<Box<dyn BuildVm>, HostError> {
        let config = &self.config;
        let base = &options.base_disk;
        if base.os_type == OsType::Windows {
            return Err(HostError::Unsupported {
                operation: "Windows guests (no WinRM communicator)".into(),
                host: "qemu".into(),
            });
        }
        if config.network == GuestNetwork::Isolated {
            uplink::check_tools()?;
        }
        let dir = options.work_dir.clone();
        let base_path = crate::vmkit::disk::local_base(&base.location, "QEMU")?;
        // Before qemu-img or QEMU opens it, and before anything of this VM exists.
        let checked = inspect_base(&base_path, base.format).await?;
        match self.reconcile().await {
            Ok(found) if !found.removed.is_empty() => tracing::info!(
                "cleaned up after crashed builds: {}",
                found.removed.join(", ")
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                "reconciling leftovers failed: {}",
                imagebuilder_core::error_chain(&e)
            ),
        }
        let overlay = dir.join("disk.qcow2");
        let qmp = SocketFile::for_vm(&config.socket_dir, &dir);
        let uplink_dir =
            (config.network == GuestNetwork::Isolated).then(|| uplink::dir_for(qmp.path()));
        // Before anything is made: a crash from here on leaves a record of it.
        let mut lease = Lease::acquire(
            &config.lease_dir,
            Record {
                vm_id: options.vm_id.clone(),
                work_dir: dir.clone(),
                qmp_socket: qmp.path().to_path_buf(),
                marker: disk_marker(&overlay),
                qemu: None,
                uplink: uplink_dir.clone(),
            },
        )?;
        let virtual_size = disk::create_overlay(
            &config.qemu_img,
            &checked,
            base.format,
            &overlay,
            options.vm_profile.os_disk_size_gb,
        )
        .await?;
        let seed = seed::create(&dir, &options.vm_id, &config.build_user).await?;
        let shape = self.shape(&options.vm_profile, base.hyper_v_generation)?;
        let accelerator =
            crate::vmkit::accel::resolve(config.accelerator, &config.qemu_binary).await;
        let vars = match base.hyper_v_generation {
            HyperVGeneration::V1 => None,
            HyperVGeneration::V2 => Some(uefi_vars_copy(&config.ovmf_vars, &dir)?),
        };
        let host_key = HostKey::parse(&seed.host_public_key)
            .map_err(|e| HostError::failed("read the pinned host key", e.to_string()))?;
        tracing::info!(
            "{}: {} vCPUs, {} MiB, {accelerator:?}",
            options.vm_id,
            shape.cpus,
            shape.memory_mib
        );

        let mut uplink = uplink_dir.as_deref().map(Uplink::prepare).transpose()?;

        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            // Isolated, QEMU forwards inside its own namespace, where no port is taken; the
            // host port is slirp4netns's (retried there). Else QEMU's own forward may clash.
            let (netdev, mut ssh_port, wrap) = match &uplink {
                Some(uplink) => (
                    uplink.netdev("net0"),
                    0,
                    Some(uplink.wrap(&config.qemu_binary)),
                ),
                None => {
                    let port = free_port()?;
                    (host_reachable_netdev(port), port, None)
                }
            };
            let launch = Launch {
                qemu: &config.qemu_binary,
                name: &format!("imagebuilder-{}", options.vm_id),
                accelerator,
                generation: base.hyper_v_generation,
                shape,
                disk: &overlay,
                seed: &seed.image,
                qmp_socket: qmp.path(),
                uefi: vars.as_deref().map(|v| (config.ovmf_code.as_path(), v)),
                netdev,
                wrap,
            };
            let tail = ConsoleTail::default();
            let stderr_log = dir.join("qemu.stderr");
            let mut child = spawn(&launch, options.console.clone(), tail.clone(), &stderr_log)?;
            let pid = child.id().unwrap_or_default();
            if let Err(e) = lease.set_qemu(pid) {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(e);
            }
            if let Some(mut net) = uplink.take() {
                net.qemu_started();
                let (net, attached) = tokio::task::spawn_blocking(move || {
                    let attached = net.attach(pid);
                    (net, attached)
                })
                .await
                .map_err(|e| HostError::failed("start the build VM's network", e.to_string()))?;
                if let Err(e) = attached {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Err(e);
                }
                ssh_port = net.ssh_port();
                uplink = Some(net);
            }
            let target = SshTarget {
                host: "127.0.0.1".into(),
                port: ssh_port,
                user: config.build_user.clone(),
                private_key: seed.client_key.clone(),
                host_key: host_key.clone(),
            };
            let attempt = tokio::select! {
                guest = SshGuest::connect(target, config.boot_timeout) => Attempt::Connected(guest),
                status = child.wait() => Attempt::Exited(status),
            };
            match attempt {
                Attempt::Connected(Ok(ssh)) => {
                    let guest = guest::QemuGuest {
                        ssh,
                        pid: child.id(),
                    };
                    return Ok(Box::new(QemuVm {
                        id: options.vm_id.clone(),
                        config: config.clone(),
                        child: Some(child),
                        guest,
                        dir,
                        overlay,
                        base_format: base.format,
                        virtual_size,
                        qmp,
                        seed,
                        ssh_port,
                        uplink,
                        tail,
                        lease: Some(lease),
                    }));
                }
                Attempt::Connected(Err(e)) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Err(HostError::failed(
                        "boot the VM",
                        format!(
                            "{}; last console lines:{}",
                            imagebuilder_core::error_chain(&e),
                            tail.text()
                        ),
                    ));
                }
                Attempt::Exited(status) => {
                    let stderr = std::fs::read_to_string(&stderr_log).unwrap_or_default();
                    if uplink.is_none()
                        && (stderr.contains("hostfwd") || stderr.contains("host forwarding"))
                    {
                        last_error = Some(format!("port {ssh_port} was taken: {}", stderr.trim()));
                        continue;
                    }
                    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                    return Err(HostError::failed(
                        "boot the VM",
                        format!(
                            "QEMU exited ({status}) before SSH answered: {}; last console lines:{}",
                            stderr.trim(),
                            tail.text()
                        ),
                    ));
                }
            }
        }
        Err(HostError::failed(
            "boot the VM",
            last_error.unwrap_or_else(|| "no free port".into()),
        ))
    }
}
