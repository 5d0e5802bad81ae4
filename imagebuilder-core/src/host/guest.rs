//! The guest side of a VM: commands, files, restarts.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use super::GuestError;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine<'a> {
    /// Stream it came from.
    pub stream: OutputStream,
    /// The line, without its newline.
    pub text: &'a str,
}

/// Receives a command's output as it is produced.
pub trait OutputSink: Send + Sync {
    /// One line of output.
    fn line(&self, line: OutputLine<'_>);
}

impl<F: Fn(OutputLine<'_>) + Send + Sync> OutputSink for F {
    fn line(&self, line: OutputLine<'_>) {
        self(line)
    }
}

/// A command to run in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// Command line given to the guest's shell (`sh -c` on Linux, PowerShell on Windows).
    pub command: String,
    /// Run with elevated rights (sudo on Linux, an elevated session on Windows).
    pub elevated: bool,
}

impl ExecRequest {
    /// A command run as the build user.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            elevated: false,
        }
    }

    /// The same command with elevated rights.
    pub fn elevated(mut self) -> Self {
        self.elevated = true;
        self
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecResult {
    /// Exit code; a command killed by a signal reports 128 + the signal number.
    pub exit_code: i32,
}

impl ExecResult {
    /// True for exit code 0.
    pub fn success(self) -> bool {
        self.exit_code == 0
    }
}

/// How to restart a guest and know it is back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartOptions {
    /// Command that restarts the guest; the host's default when empty.
    pub command: String,
    /// Command that succeeds once the guest is back; none when empty.
    pub check_command: String,
    /// How long the guest may take to come back.
    pub timeout: Duration,
}

/// A running guest.
///
/// # Contract
/// - `exec` streams every output line to `output` before it returns, and returns the exit
///   code; a non-zero exit is an `Ok` result, not an error.
/// - `upload` writes the whole file at `remote` (an absolute guest path) or fails; the parent
///   directory must exist (as AIB's File customizer requires).
/// - `restart` returns once the guest answers commands again.
///
/// # Errors
/// [`GuestError::Disconnected`] when the connection breaks, [`GuestError::Timeout`] when the
/// guest does not answer in time, [`GuestError::Failed`] otherwise.
///
/// # Cancellation
/// Dropping a returned future abandons the operation; the guest may still be running the
/// command. The engine only does that when it is about to destroy the VM.
#[async_trait]
pub trait Guest: Send + Sync {
    /// Runs a command, streaming its output.
    async fn exec(
        &self,
        request: &ExecRequest,
        output: &dyn OutputSink,
    ) -> Result<ExecResult, GuestError>;

    /// Copies a local file into the guest.
    async fn upload(&self, local: &Path, remote: &str) -> Result<(), GuestError>;

    /// Restarts the guest and waits until it answers again.
    async fn restart(&self, options: &RestartOptions) -> Result<(), GuestError>;
}
