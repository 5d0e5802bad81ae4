//! Build hosts and the VMs they provision.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use super::{Guest, HostError, OutputSink};
use crate::source::BaseDisk;
use crate::template::model::{DiskFormat, VmProfile};

/// What a host can do; the engine refuses a template the host cannot build before starting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Boots Gen1 (BIOS/MBR) images.
    pub bios: bool,
    /// Boots Gen2 (UEFI/GPT) images.
    pub uefi: bool,
    /// Runs Windows guests.
    pub windows: bool,
    /// Can restart a guest and wait for it (Restart and WindowsRestart customizers).
    pub restart: bool,
    /// Can keep a failed VM running for debugging (`errorHandling: abort`).
    pub keep_on_failure: bool,
    /// Formats of base disks the host boots from.
    pub base_disk_formats: Vec<DiskFormat>,
}

impl Capabilities {
    /// A host that can do everything; used by the mock host.
    pub fn all() -> Self {
        Self {
            bios: true,
            uefi: true,
            windows: true,
            restart: true,
            keep_on_failure: true,
            base_disk_formats: vec![DiskFormat::Raw, DiskFormat::Qcow2, DiskFormat::Vhd],
        }
    }

    /// A host that can do nothing; set the fields it can.
    pub fn none() -> Self {
        Self {
            bios: false,
            uefi: false,
            windows: false,
            restart: false,
            keep_on_failure: false,
            base_disk_formats: Vec::new(),
        }
    }
}

/// Why a VM is provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VmPurpose {
    /// The build VM that customizers run in.
    Build,
    /// A VM booted from the capture (or the source) to run validators.
    Validation,
}

/// What to provision.
pub struct ProvisionOptions {
    /// Unique id of this VM; hosts name their resources after it so leftovers can be found.
    pub vm_id: String,
    /// Build or validation.
    pub purpose: VmPurpose,
    /// The disk to boot; never written to (hosts use a copy-on-write overlay).
    pub base_disk: BaseDisk,
    /// Size, disk size and network of the VM, as the template gives them.
    pub vm_profile: VmProfile,
    /// A directory of this run the host may use for its files (overlay, seed, console log).
    pub work_dir: PathBuf,
    /// Receives the VM's console output, line by line, for as long as the VM runs.
    pub console: Arc<dyn OutputSink>,
}

/// How a person can reach a VM kept after a failure (`errorHandling: abort`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VmAccess {
    /// A command or address, e.g. `ssh -i KEY -p 2222 builder@127.0.0.1`.
    pub how: String,
    /// How to remove it when done, e.g. `kill 4242 && rm -r DIR`.
    pub cleanup: String,
}

/// A disk captured from a stopped VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedDisk {
    /// The file written.
    pub path: PathBuf,
    /// Its format.
    pub format: DiskFormat,
    /// Virtual size in bytes.
    pub virtual_size: u64,
}

/// A place to run build and validation VMs.
///
/// # Contract
/// - `provision` returns a VM whose guest answers commands, or an error having left nothing
///   behind.
/// - The base disk is never written to.
///
/// # Errors
/// [`HostError::Unsupported`] for what [`BuildHost::capabilities`] excludes; otherwise
/// [`HostError::Failed`] or [`HostError::Timeout`] with the host's own error as source.
///
/// # Cancellation
/// Dropping the `provision` future must not leak: a host either finishes cleanup itself or
/// makes its resources findable by `vm_id` (resources are named after it).
#[async_trait]
pub trait BuildHost: Send + Sync {
    /// A short name for messages, e.g. `qemu`.
    fn name(&self) -> &str;

    /// What this host can do.
    fn capabilities(&self) -> Capabilities;

    /// Starts a VM from `options.base_disk` and waits until its guest answers.
    async fn provision(&self, options: ProvisionOptions) -> Result<Box<dyn BuildVm>, HostError>;

    /// The memory in MiB a VM of `profile` takes on this host, for an engine's memory budget;
    /// `None` when the host cannot say (the engine then assumes
    /// [`ASSUMED_VM_MEMORY_MIB`](crate::engine::ASSUMED_VM_MEMORY_MIB)).
    fn vm_memory_mib(&self, profile: &VmProfile) -> Option<u64> {
        let _ = profile;
        None
    }
}

/// One running VM.
///
/// # Contract
/// - `guest` is usable until `shutdown`.
/// - `capture` is called after `shutdown` and writes the VM's disk to `destination` as one
///   self-contained file (no backing file).
/// - `destroy` removes everything the VM used (processes, files, ports, domains) and is
///   called exactly once on every path; it succeeds if the VM is already gone.
///
/// # Errors
/// As for [`BuildHost`].
///
/// # Cancellation
/// Dropping a future of `shutdown` or `capture` leaves the VM destroyable.
#[async_trait]
pub trait BuildVm: Send + Sync {
    /// The id given at provisioning.
    fn id(&self) -> &str;

    /// The guest, to run commands and copy files.
    fn guest(&self) -> &dyn Guest;

    /// How a person can reach the VM and remove it, for a VM kept after a failure.
    fn access(&self) -> VmAccess;

    /// Stops the guest cleanly (the guest flushes its disks). It is the build VM's last
    /// guest action, after generalize: a host that made a build user for its own access
    /// removes it first (account, home, sudo rules), so no capture holds it, and fails
    /// rather than stop a guest that still has it.
    async fn shutdown(&mut self) -> Result<(), HostError>;

    /// Writes the stopped VM's disk to `destination`.
    async fn capture(&mut self, destination: &Path) -> Result<CapturedDisk, HostError>;

    /// Removes the VM and everything it used.
    async fn destroy(self: Box<Self>) -> Result<(), HostError>;

    /// Leaves the VM running for a person to inspect (`errorHandling: abort`) and returns how
    /// to reach and remove it; the host stops tracking it.
    fn keep(self: Box<Self>) -> VmAccess;
}
