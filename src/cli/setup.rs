//! Options shared by the commands that run builds: state directory, environment, host.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use imagebuilder::core::distribute::InMemoryTargets;
use imagebuilder::core::engine::Engine;
use imagebuilder::core::environment::{BuildHostEntry, Environment};
use imagebuilder::core::source::{SourceCache, SourceResolver};
use imagebuilder::core::store::TemplateStore;
use imagebuilder::dist::LocalTargets;
use imagebuilder::drivers::mock::MockBuildHost;

use super::UsageError;

/// Where builds run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum HostKind {
    /// Simulated: no VM; the captured disk is a placeholder and targets are in memory.
    Mock,
    /// QEMU on this machine (KVM when usable, else TCG).
    Qemu,
    /// A libvirt hypervisor, local or remote (--libvirt-uri).
    Libvirt,
}

impl Default for HostKind {
    /// QEMU when this build has it, else the mock host.
    fn default() -> Self {
        if cfg!(feature = "qemu") {
            Self::Qemu
        } else {
            Self::Mock
        }
    }
}

/// `--state-dir`.
#[derive(Debug, Args)]
pub(crate) struct StateArgs {
    /// State directory: templates, staging, images (default: the embedded one,
    /// $IMAGEBUILDER_STATE_DIR or ~/.local/state/imagebuilder).
    #[arg(long, value_name = "DIR", global = true)]
    state_dir: Option<PathBuf>,
}

impl StateArgs {
    pub(crate) fn dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(TemplateStore::default_state_dir)
    }

    pub(crate) fn store(&self) -> Result<TemplateStore, UsageError> {
        let dir = self.dir();
        TemplateStore::open(&dir).map_err(|e| {
            UsageError(format!(
                "cannot open state directory {}: {}",
                dir.display(),
                imagebuilder::core::error_chain(&e)
            ))
        })
    }
}

/// `--env`.
#[derive(Debug, Args)]
pub(crate) struct EnvArgs {
    /// Environment file mapping Azure names to local resources (default: the embedded one).
    #[arg(long = "env", value_name = "FILE")]
    env_file: Option<PathBuf>,
}

impl EnvArgs {
    /// The environment file's contents, or the embedded default.
    pub(crate) fn environment(
        &self,
        state_dir: &std::path::Path,
    ) -> Result<Environment, UsageError> {
        Ok(self.environment_with_host(state_dir)?.0)
    }

    /// The environment file's contents and build host, or the embedded default.
    pub(crate) fn environment_with_host(
        &self,
        state_dir: &std::path::Path,
    ) -> Result<(Environment, Option<BuildHostEntry>), UsageError> {
        match &self.env_file {
            Some(path) => Environment::from_file_with_host(path)
                .map_err(|e| UsageError(imagebuilder::core::error_chain(&e))),
            None => Ok((Environment::embedded_default(state_dir), None)),
        }
    }
}

/// A disk image's format, named on the command line (never guessed from an untrusted file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiskFormatArg {
    /// A plain byte-for-byte disk.
    Raw,
    /// qcow2.
    Qcow2,
    /// VHD, fixed or dynamic.
    Vhd,
}

impl From<DiskFormatArg> for imagebuilder::template::model::DiskFormat {
    fn from(format: DiskFormatArg) -> Self {
        match format {
            DiskFormatArg::Raw => Self::Raw,
            DiskFormatArg::Qcow2 => Self::Qcow2,
            DiskFormatArg::Vhd => Self::Vhd,
        }
    }
}

/// `--env` and `--host`.
#[derive(Debug, Args)]
pub(crate) struct EngineArgs {
    #[command(flatten)]
    env: EnvArgs,

    /// Build host [default: the environment file's buildHost, else qemu when built with it,
    /// else mock].
    #[arg(long, value_enum)]
    host: Option<HostKind>,

    /// Accelerator: auto (KVM only when a bounded probe shows it works), kvm or tcg (for
    /// libvirt: domain type kvm or qemu).
    #[arg(long, value_enum, default_value_t = AcceleratorArg::Auto)]
    accelerator: AcceleratorArg,

    /// vCPUs of every VM instead of the template's vmSize (with --memory-mib).
    #[arg(long, requires = "memory_mib")]
    cpus: Option<u32>,

    /// Memory of every VM in MiB instead of the template's vmSize (with --cpus).
    #[arg(long, requires = "cpus")]
    memory_mib: Option<u32>,

    /// What a QEMU build VM can reach: isolated (the outside network, nothing on this
    /// machine's loopback; needs slirp4netns) or host-reachable (QEMU's plain user network:
    /// steps can connect to every service on this machine's 127.0.0.1).
    #[arg(long, value_enum, default_value_t = QemuNetworkArg::Isolated)]
    qemu_network: QemuNetworkArg,

    #[command(flatten)]
    libvirt: LibvirtArgs,
}

/// Options of `--host libvirt`.
#[derive(Debug, Args)]
pub(crate) struct LibvirtArgs {
    /// libvirt connection URI, e.g. qemu+ssh://user@host/system [default: the environment
    /// file's buildHost.uri, else qemu:///system].
    #[arg(long, value_name = "URI")]
    libvirt_uri: Option<String>,

    /// Storage pool for the build VMs' volumes, made as a directory pool when missing
    /// [default: buildHost.pool, else imagebuilder].
    #[arg(long, value_name = "NAME")]
    libvirt_pool: Option<String>,

    /// Directory (on the hypervisor host) a missing pool is made at
    /// (default: /var/lib/libvirt/images/NAME).
    #[arg(long, value_name = "DIR")]
    libvirt_pool_path: Option<PathBuf>,

    /// Attach build VMs to this libvirt network (e.g. default) instead of a user-mode
    /// network with SSH forwarded on 127.0.0.1; needed for remote URIs [default:
    /// buildHost.network].
    #[arg(long, value_name = "NAME", conflicts_with = "libvirt_bridge")]
    libvirt_network: Option<String>,

    /// Attach build VMs to this host bridge (e.g. br0) [default: buildHost.bridge].
    #[arg(long, value_name = "NAME")]
    libvirt_bridge: Option<String>,
}

/// `--qemu-network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum QemuNetworkArg {
    /// The outside network, nothing on this machine's loopback.
    Isolated,
    /// QEMU's plain user network, which reaches this machine's 127.0.0.1.
    HostReachable,
}

/// `--accelerator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AcceleratorArg {
    /// KVM when it works, else TCG.
    Auto,
    /// KVM without probing.
    Kvm,
    /// Software emulation.
    Tcg,
}

impl EngineArgs {
    /// The engine these arguments describe.
    pub(crate) fn engine(&self, state_dir: &std::path::Path) -> Result<Engine, UsageError> {
        let (environment, build_host) = self.env.environment_with_host(state_dir)?;
        let build_host = build_host.unwrap_or_default();
        let host = match (self.host, build_host.kind.as_str()) {
            (Some(host), _) => host,
            (None, "") => HostKind::default(),
            (None, kind) => HostKind::from_str(kind, true).map_err(|_| {
                UsageError(format!(
                    "the environment file's buildHost.type '{kind}' is not mock, qemu or libvirt"
                ))
            })?,
        };
        let targets = LocalTargets::new(state_dir, environment.clone());
        // Managed images and gallery versions built here serve later builds as sources.
        let source = SourceResolver::new(
            Arc::new(environment.catalog()),
            Arc::new(targets.managed_images().clone()),
            Arc::new(targets.galleries().clone()),
        );
        let engine = match host {
            HostKind::Mock => Engine::new(
                Arc::new(MockBuildHost::new()),
                Arc::new(source),
                Arc::new(InMemoryTargets::new()),
            ),
            HostKind::Qemu => qemu_engine(source, targets, self, state_dir)?,
            HostKind::Libvirt => libvirt_engine(source, targets, self, &build_host, state_dir)?,
        };
        // Downloaded sources and remembered digests serve every later build of this state.
        Ok(engine.with_source_cache(SourceCache::new(source_cache_dir(state_dir))))
    }
}

/// `STATE/cache/sources`: the source cache of every build using this state directory.
pub(crate) fn source_cache_dir(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("cache").join("sources")
}

/// Cleans up after the VMs of builds whose process died (killed, crashed), as every use of
/// the state directory does: the store marks such a run Failed, and here its QEMU is stopped
/// and its files removed. Best effort: a failure is reported, not fatal.
pub(crate) async fn reconcile_vms(state_dir: &std::path::Path) {
    #[cfg(feature = "qemu")]
    {
        let host = imagebuilder::drivers::qemu::QemuBuildHost::new(qemu_config(state_dir));
        match host.reconcile().await {
            Ok(found) => {
                for vm in &found.removed {
                    eprintln!("cleaned up VM {vm}, left by a build whose process died");
                }
            }
            Err(e) => eprintln!(
                "warning: could not clean up after builds whose process died: {}",
                imagebuilder::core::error_chain(&e)
            ),
        }
    }
    #[cfg(not(feature = "qemu"))]
    let _ = state_dir;
}

/// The QEMU host's configuration for a state directory: its leases under `STATE/qemu-leases`,
/// where the next build or `template` command finds the VMs of builds whose process died.
#[cfg(feature = "qemu")]
fn qemu_config(state_dir: &std::path::Path) -> imagebuilder::drivers::qemu::QemuConfig {
    imagebuilder::drivers::qemu::QemuConfig::default().with_lease_dir(state_dir.join("qemu-leases"))
}

#[cfg(feature = "qemu")]
fn qemu_engine(
    source: SourceResolver,
    targets: LocalTargets,
    args: &EngineArgs,
    state_dir: &std::path::Path,
) -> Result<Engine, UsageError> {
    use imagebuilder::drivers::qemu::{Accelerator, GuestNetwork, QemuBuildHost, VmShape};
    let mut config = qemu_config(state_dir)
        .with_accelerator(match args.accelerator {
            AcceleratorArg::Auto => Accelerator::Auto,
            AcceleratorArg::Kvm => Accelerator::Kvm,
            AcceleratorArg::Tcg => Accelerator::Tcg,
        })
        .with_network(match args.qemu_network {
            QemuNetworkArg::Isolated => GuestNetwork::Isolated,
            QemuNetworkArg::HostReachable => GuestNetwork::HostReachable,
        });
    if let (Some(cpus), Some(memory_mib)) = (args.cpus, args.memory_mib) {
        config = config.with_shape(VmShape { cpus, memory_mib });
    }
    Ok(Engine::new(
        Arc::new(QemuBuildHost::new(config)),
        Arc::new(source),
        Arc::new(targets),
    ))
}

#[cfg(not(feature = "qemu"))]
fn qemu_engine(
    _: SourceResolver,
    _: LocalTargets,
    _: &EngineArgs,
    _: &std::path::Path,
) -> Result<Engine, UsageError> {
    Err(UsageError(
        "this build of imagebuilder lacks the 'qemu' feature".into(),
    ))
}

#[cfg(feature = "libvirt")]
fn libvirt_engine(
    source: SourceResolver,
    targets: LocalTargets,
    args: &EngineArgs,
    from_env: &BuildHostEntry,
    state_dir: &std::path::Path,
) -> Result<Engine, UsageError> {
    use imagebuilder::drivers::libvirt::{
        Accelerator, LibvirtBuildHost, LibvirtConfig, LibvirtNetwork, VmShape,
    };
    let lv = &args.libvirt;
    // A network or bridge on the command line replaces the file's, whichever it named.
    let (network, bridge) = if lv.libvirt_network.is_some() || lv.libvirt_bridge.is_some() {
        (&lv.libvirt_network, &lv.libvirt_bridge)
    } else {
        (&from_env.network, &from_env.bridge)
    };
    let network = match (network, bridge) {
        (Some(name), _) => LibvirtNetwork::Network(name.clone()),
        (None, Some(name)) => LibvirtNetwork::Bridge(name.clone()),
        (None, None) => LibvirtNetwork::User,
    };
    let defaults = LibvirtConfig::default();
    let uri = lv
        .libvirt_uri
        .clone()
        .or_else(|| from_env.uri.clone())
        .unwrap_or(defaults.uri.clone());
    let pool = lv
        .libvirt_pool
        .clone()
        .or_else(|| from_env.pool.clone())
        .unwrap_or(defaults.pool.clone());
    let mut config = defaults
        .with_uri(uri)
        .with_pool(pool, lv.libvirt_pool_path.clone())
        .with_network(network)
        .with_lease_dir(state_dir.join("libvirt-leases"))
        .with_accelerator(match args.accelerator {
            AcceleratorArg::Auto => Accelerator::Auto,
            AcceleratorArg::Kvm => Accelerator::Kvm,
            AcceleratorArg::Tcg => Accelerator::Tcg,
        });
    if let (Some(cpus), Some(memory_mib)) = (args.cpus, args.memory_mib) {
        config = config.with_shape(VmShape { cpus, memory_mib });
    }
    Ok(Engine::new(
        Arc::new(LibvirtBuildHost::new(config)),
        Arc::new(source),
        Arc::new(targets),
    ))
}

#[cfg(not(feature = "libvirt"))]
fn libvirt_engine(
    _: SourceResolver,
    _: LocalTargets,
    _: &EngineArgs,
    _: &BuildHostEntry,
    _: &std::path::Path,
) -> Result<Engine, UsageError> {
    Err(UsageError(
        "this build of imagebuilder lacks the 'libvirt' feature (cargo build --features libvirt; needs libvirt-dev)".into(),
    ))
}
