//! `PowerShell`: a script on a Windows guest, optionally elevated.

use async_trait::async_trait;

use super::{
    label, quote, run_checked, script_artifacts, upload_script, ArtifactRef, CustomizeError,
    Customizer, StepContext, StepInfo,
};
use crate::host::{ExecRequest, Guest};
use crate::template::model::PowerShellStep;

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
        script_artifacts(&self.step.script, &self.step.sha256_checksum)
    }

    async fn run(&self, guest: &dyn Guest, cx: &StepContext<'_>) -> Result<(), CustomizeError> {
        let step = label("PowerShell", self.step.name.as_deref(), cx.index);
        let remote = format!(r"C:\Windows\Temp\imagebuilder-step-{}.ps1", cx.index);
        // Inline cmdlets stop at the first failure, like the Linux `sh -e`.
        let render = |lines: &[String]| {
            format!(
                "$ErrorActionPreference = 'Stop'\r\n{}\r\n",
                lines.join("\r\n")
            )
        };
        upload_script(guest, cx, &step, &self.step.script, render, &remote).await?;
        let mut command = ExecRequest::new(format!(
            "powershell.exe -NoProfile -ExecutionPolicy Bypass -File {}",
            quote::ps(&remote)
        ));
        command.elevated = self.step.run_elevated;
        run_checked(guest, &command, cx, &step, &self.step.valid_exit_codes).await
    }
}
