//! Customizers: the steps run in the build VM, and AIB's hidden last step, generalize.
//!
//! [`for_spec`] turns a template's `customize[]` and `inVMValidations[]` entries into
//! [`Customizer`]s; programs can add their own implementations through the template builder.

mod error;
mod file;
mod generalize;
mod powershell;
mod quote;
mod shell;
mod windows;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

pub use error::CustomizeError;
pub use file::FileCustomizer;
pub use generalize::Generalize;
pub use powershell::PowerShellCustomizer;
pub use shell::ShellCustomizer;
pub use windows::{RestartCustomizer, WindowsUpdateCustomizer};

use crate::host::{Guest, OutputSink};
use crate::template::model::{CustomizerSpec, OsType, Script, ValidatorSpec};

/// A file a step needs, fetched into staging and checked before any VM starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRef {
    /// Where to fetch it from.
    pub uri: String,
    /// Expected sha256 (64 hex digits), when the template gives one.
    pub sha256: Option<String>,
}

/// Local copies of every artifact of a run, by URI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagedArtifacts {
    files: BTreeMap<String, PathBuf>,
}

impl StagedArtifacts {
    /// Records where `uri` was staged.
    pub fn insert(&mut self, uri: impl Into<String>, path: PathBuf) {
        self.files.insert(uri.into(), path);
    }

    /// The local copy of `uri`.
    pub fn get(&self, uri: &str) -> Option<&Path> {
        self.files.get(uri).map(PathBuf::as_path)
    }
}

/// What a step may use besides the guest.
pub struct StepContext<'a> {
    /// Operating system of the guest.
    pub os_type: OsType,
    /// Position of the step in its list; used to name uploaded scripts.
    pub index: usize,
    /// Local copies of the run's artifacts.
    pub artifacts: &'a StagedArtifacts,
    /// A local directory for files a step writes before uploading them.
    pub scratch_dir: &'a Path,
    /// Receives the guest's output.
    pub output: &'a dyn OutputSink,
}

/// What a step is, for events and logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepInfo {
    /// The step type, e.g. `Shell`.
    pub kind: String,
    /// The step's name from the template, when it has one.
    pub name: Option<String>,
}

/// One customization or validation step.
///
/// # Contract
/// - `artifacts` lists every URI `run` will read from [`StepContext::artifacts`]; the engine
///   fetches and checks them before provisioning.
/// - `run` succeeds only if the step did what it says; a command's exit code outside the
///   step's valid codes is [`CustomizeError::ExitCode`].
///
/// # Errors
/// [`CustomizeError`] names the step and what failed.
///
/// # Cancellation
/// The engine drops `run` only when it is about to destroy the VM, so a step need not undo
/// partial work in the guest.
#[async_trait]
pub trait Customizer: Send + Sync {
    /// Type and name of the step.
    fn info(&self) -> StepInfo;

    /// Files the step needs staged.
    fn artifacts(&self) -> Vec<ArtifactRef> {
        Vec::new()
    }

    /// The step restarts the guest, so the host must be able to (checked before any VM
    /// starts).
    fn restarts_guest(&self) -> bool {
        false
    }

    /// Runs the step in the guest.
    async fn run(&self, guest: &dyn Guest, cx: &StepContext<'_>) -> Result<(), CustomizeError>;
}

/// The built-in customizer for a template's `customize[]` entry.
pub fn for_spec(spec: &CustomizerSpec) -> Arc<dyn Customizer> {
    match spec {
        CustomizerSpec::Shell(step) => Arc::new(ShellCustomizer::new(step.clone())),
        CustomizerSpec::PowerShell(step) => Arc::new(PowerShellCustomizer::new(step.clone())),
        CustomizerSpec::File(step) => Arc::new(FileCustomizer::new(step.clone())),
        CustomizerSpec::WindowsRestart(step) => Arc::new(RestartCustomizer::windows(step.clone())),
        CustomizerSpec::Restart(step) => Arc::new(RestartCustomizer::linux(step.clone())),
        CustomizerSpec::WindowsUpdate(step) => Arc::new(WindowsUpdateCustomizer::new(step.clone())),
    }
}

/// The built-in step for a template's `inVMValidations[]` entry.
pub fn for_validator(spec: &ValidatorSpec) -> Arc<dyn Customizer> {
    match spec {
        ValidatorSpec::Shell(step) => Arc::new(ShellCustomizer::new(step.clone())),
        ValidatorSpec::PowerShell(step) => Arc::new(PowerShellCustomizer::new(step.clone())),
        ValidatorSpec::File(step) => Arc::new(FileCustomizer::new(step.clone())),
    }
}

/// The artifact of a step with an optional checksum (empty means none).
fn artifact(uri: &str, sha256: &str) -> ArtifactRef {
    ArtifactRef {
        uri: uri.to_owned(),
        sha256: (!sha256.is_empty()).then(|| sha256.to_ascii_lowercase()),
    }
}

/// Runs `command`, failing unless its exit code is in `valid`.
async fn run_checked(
    guest: &dyn Guest,
    request: &crate::host::ExecRequest,
    cx: &StepContext<'_>,
    step: &str,
    valid: &[i64],
) -> Result<(), CustomizeError> {
    let result = guest
        .exec(request, cx.output)
        .await
        .map_err(|source| CustomizeError::Guest {
            step: step.to_owned(),
            source,
        })?;
    if valid.contains(&i64::from(result.exit_code)) {
        Ok(())
    } else {
        Err(CustomizeError::ExitCode {
            step: step.to_owned(),
            exit_code: result.exit_code,
            valid: valid.to_vec(),
        })
    }
}

/// Writes `contents` to the scratch dir and uploads it to `remote`.
async fn upload_text(
    guest: &dyn Guest,
    cx: &StepContext<'_>,
    step: &str,
    contents: &str,
    remote: &str,
) -> Result<(), CustomizeError> {
    let local = cx.scratch_dir.join(format!("step-{}", cx.index));
    tokio::fs::write(&local, contents)
        .await
        .map_err(|source| CustomizeError::Io {
            step: step.to_owned(),
            path: local.clone(),
            source,
        })?;
    guest
        .upload(&local, remote)
        .await
        .map_err(|source| CustomizeError::Guest {
            step: step.to_owned(),
            source,
        })
}

/// The artifact a script step needs: its `scriptUri`, if it has one.
fn script_artifacts(script: &Script, sha256: &str) -> Vec<ArtifactRef> {
    match script {
        Script::ScriptUri(uri) => vec![artifact(uri, sha256)],
        Script::Inline(_) => Vec::new(),
    }
}

/// Puts a step's script at `remote`: the staged `scriptUri` file, or the inline commands as
/// `render` writes them out.
async fn upload_script(
    guest: &dyn Guest,
    cx: &StepContext<'_>,
    step: &str,
    script: &Script,
    render: impl FnOnce(&[String]) -> String,
    remote: &str,
) -> Result<(), CustomizeError> {
    match script {
        Script::Inline(lines) => upload_text(guest, cx, step, &render(lines), remote).await,
        Script::ScriptUri(uri) => {
            let local = staged(cx, step, uri)?;
            guest
                .upload(local, remote)
                .await
                .map_err(|source| CustomizeError::Guest {
                    step: step.to_owned(),
                    source,
                })
        }
    }
}

/// The local copy of a step's artifact, which the engine staged.
fn staged<'a>(cx: &StepContext<'a>, step: &str, uri: &str) -> Result<&'a Path, CustomizeError> {
    cx.artifacts
        .get(uri)
        .ok_or_else(|| CustomizeError::NotStaged {
            step: step.to_owned(),
            uri: uri.to_owned(),
        })
}

/// `Shell 'name'` or `Shell #2`, for messages.
fn label(kind: &str, name: Option<&str>, index: usize) -> String {
    match name {
        Some(name) => format!("{kind} '{name}'"),
        None => format!("{kind} #{}", index + 1),
    }
}
