//! The guest of a QEMU VM: the SSH guest, with one thing only the host knows added to its
//! errors. When QEMU itself has died (killed, crashed), a broken or silent connection is a
//! symptom; the error then says that the VM's process is gone.

use std::path::Path;

use async_trait::async_trait;
use imagebuilder_core::host::{
    ExecRequest, ExecResult, Guest, GuestError, OutputSink, RestartOptions,
};

use crate::ssh::SshGuest;

pub(crate) struct QemuGuest {
    pub(crate) ssh: SshGuest,
    /// QEMU's pid (our child, so it stays a zombie until reaped when it dies).
    pub(crate) pid: Option<u32>,
}

/// Why the connection broke: the VM's QEMU process exited.
#[derive(Debug, thiserror::Error)]
#[error("QEMU exited (pid {pid} is gone), so the VM is gone")]
struct QemuExited {
    pid: u32,
    #[source]
    symptom: Box<dyn std::error::Error + Send + Sync>,
}

impl QemuGuest {
    /// Whether QEMU has exited: its pid is gone or a zombie.
    fn qemu_exited(&self) -> Option<u32> {
        let pid = self.pid?;
        let gone = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the command name in parentheses, which may hold spaces.
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state == "Z" || state == "X"),
            Err(_) => true,
        };
        gone.then_some(pid)
    }

    fn explain(&self, error: GuestError) -> GuestError {
        let Some(pid) = self.qemu_exited() else {
            return error;
        };
        match error {
            GuestError::Disconnected { operation, source } => GuestError::Disconnected {
                operation,
                source: Box::new(QemuExited {
                    pid,
                    symptom: source,
                }),
            },
            GuestError::Timeout { operation, after } => GuestError::Disconnected {
                operation,
                source: Box::new(QemuExited {
                    pid,
                    symptom: format!("no answer within {after:?}").into(),
                }),
            },
            other => other,
        }
    }
}

#[async_trait]
impl Guest for QemuGuest {
    async fn exec(
        &self,
        request: &ExecRequest,
        output: &dyn OutputSink,
    ) -> Result<ExecResult, GuestError> {
        self.ssh
            .exec(request, output)
            .await
            .map_err(|e| self.explain(e))
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<(), GuestError> {
        self.ssh
            .upload(local, remote)
            .await
            .map_err(|e| self.explain(e))
    }

    async fn restart(&self, options: &RestartOptions) -> Result<(), GuestError> {
        self.ssh.restart(options).await.map_err(|e| self.explain(e))
    }
}
