//! Options shared by the commands that run builds: state directory, environment, host.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use imagebuilder::core::distribute::InMemoryTargets;
use imagebuilder::core::engine::Engine;
use imagebuilder::core::environment::Environment;
use imagebuilder::core::source::SourceResolver;
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
    /// A libvirt hypervisor (issue #6).
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
        match &self.env_file {
            Some(path) => Environment::from_file(path)
                .map_err(|e| UsageError(imagebuilder::core::error_chain(&e))),
            None => Ok(Environment::embedded_default(state_dir)),
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

    /// Build host.
    #[arg(long, value_enum, default_value_t = HostKind::default())]
    host: HostKind,

    /// QEMU accelerator: auto (KVM only when a bounded probe shows it works), kvm or tcg.
    #[arg(long, value_enum, default_value_t = AcceleratorArg::Auto)]
    accelerator: AcceleratorArg,

    /// vCPUs of every VM instead of the template's vmSize (with --memory-mib).
    #[arg(long, requires = "memory_mib")]
    cpus: Option<u32>,

    /// Memory of every VM in MiB instead of the template's vmSize (with --cpus).
    #[arg(long, requires = "cpus")]
    memory_mib: Option<u32>,
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
        let environment = self.env.environment(state_dir)?;
        let targets = LocalTargets::new(state_dir, environment.clone());
        // Managed images and gallery versions built here serve later builds as sources.
        let source = SourceResolver::new(
            Arc::new(environment.catalog()),
            Arc::new(targets.managed_images().clone()),
            Arc::new(targets.galleries().clone()),
        );
        match self.host {
            HostKind::Mock => Ok(Engine::new(
                Arc::new(MockBuildHost::new()),
                Arc::new(source),
                Arc::new(InMemoryTargets::new()),
            )),
            HostKind::Qemu => qemu_engine(source, targets, self),
            HostKind::Libvirt => Err(UsageError(
                "the libvirt host is not available yet (issue #6); use --host mock".into(),
            )),
        }
    }
}

#[cfg(feature = "qemu")]
fn qemu_engine(
    source: SourceResolver,
    targets: LocalTargets,
    args: &EngineArgs,
) -> Result<Engine, UsageError> {
    use imagebuilder::drivers::qemu::{Accelerator, QemuBuildHost, QemuConfig, VmShape};
    let mut config = QemuConfig::default().with_accelerator(match args.accelerator {
        AcceleratorArg::Auto => Accelerator::Auto,
        AcceleratorArg::Kvm => Accelerator::Kvm,
        AcceleratorArg::Tcg => Accelerator::Tcg,
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
fn qemu_engine(_: SourceResolver, _: LocalTargets, _: &EngineArgs) -> Result<Engine, UsageError> {
    Err(UsageError(
        "this build of imagebuilder lacks the 'qemu' feature".into(),
    ))
}
