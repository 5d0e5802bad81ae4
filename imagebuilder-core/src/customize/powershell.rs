//! `PowerShell`: a script on a Windows guest, optionally elevated.

use async_trait::async_trait;

use super::{
    artifact, label, quote, run_checked, staged, upload_text, ArtifactRef, CustomizeError,
    Customizer, StepContext, StepInfo,
};
use crate::host::{ExecRequest, Guest};
use crate::template::model::{PowerShellStep, Script};

/// Runs a template's `PowerShell` step.
#[derive(Debug, Clone)]
pub struct PowerShellCustomizer {
    step: PowerShellStep,
}

impl PowerShellCustomizer {
    /// The customizer for `step`.
    pub fn new(step: PowerShellStep) -> Self {
        Self { step }
    }
}

#[async_trait]
impl Customizer for PowerShellCustomizer {
    fn info(&self) -> StepInfo {
        StepInfo {
            kind: "PowerShell".into(),
            name: self.step.name.clone(),
        }
    }

    fn artifacts(&self) -> Vec<ArtifactRef> {
        match &self.step.script {
            Script::ScriptUri(uri) => vec![artifact(uri, &self.step.sha256_checksum)],
            Script::Inline(_) => Vec::new(),
        }
    }

    async fn run(&self, guest: &dyn Guest, cx: &StepContext<'_>) -> Result<(), CustomizeError> {
        let step = label("PowerShell", self.step.name.as_deref(), cx.index);
        let remote = format!(r"C:\Windows\Temp\imagebuilder-step-{}.ps1", cx.index);
        match &self.step.script {
            Script::Inline(lines) => {
                // Stop at the first failing cmdlet, like the Linux `sh -e`.
                let script = format!(
                    "$ErrorActionPreference = 'Stop'\r\n{}\r\n",
                    lines.join("\r\n")
                );
                upload_text(guest, cx, &step, &script, &remote).await?;
            }
            Script::ScriptUri(uri) => {
                let local = staged(cx, &step, uri)?;
                guest
                    .upload(local, &remote)
                    .await
                    .map_err(|source| CustomizeError::Guest {
                        step: step.clone(),
                        source,
                    })?;
            }
        }
        let mut command = ExecRequest::new(format!(
            "powershell.exe -NoProfile -ExecutionPolicy Bypass -File {}",
            quote::ps(&remote)
        ));
        command.elevated = self.step.run_elevated;
        run_checked(guest, &command, cx, &step, &self.step.valid_exit_codes).await
    }
}
