//! `Shell`: a script run as the non-root build user (scripts use `sudo` where they need it,
//! as with AIB).

use async_trait::async_trait;

use super::{
    label, quote, run_checked, script_artifacts, upload_script, ArtifactRef, CustomizeError,
    Customizer, StepContext, StepInfo,
};
use crate::host::{ExecRequest, Guest};
use crate::template::model::ShellStep;

/// Runs a template's `Shell` step.
#[derive(Debug, Clone)]
pub struct ShellCustomizer {
    step: ShellStep,
}

impl ShellCustomizer {
    /// The customizer for `step`.
    pub fn new(step: ShellStep) -> Self {
        Self { step }
    }
}

/// Inline commands become one script that stops at the first failing command, as Packer's
/// default `inline_shebang` (`/bin/sh -e`) does under AIB.
pub(crate) fn inline_script(lines: &[String]) -> String {
    let mut script = String::from("#!/bin/sh -e\n");
    for line in lines {
        script.push_str(line);
        script.push('\n');
    }
    script
}

#[async_trait]
impl Customizer for ShellCustomizer {
    fn info(&self) -> StepInfo {
        StepInfo {
            kind: "Shell".into(),
            name: self.step.name.clone(),
        }
    }

    fn artifacts(&self) -> Vec<ArtifactRef> {
        script_artifacts(&self.step.script, &self.step.sha256_checksum)
    }

    async fn run(&self, guest: &dyn Guest, cx: &StepContext<'_>) -> Result<(), CustomizeError> {
        let step = label("Shell", self.step.name.as_deref(), cx.index);
        let remote = format!("/tmp/imagebuilder-step-{}.sh", cx.index);
        upload_script(guest, cx, &step, &self.step.script, inline_script, &remote).await?;
        let path = quote::sh(&remote);
        let command = ExecRequest::new(format!(
            "chmod +x {path} && {path}; status=$?; rm -f {path}; exit $status"
        ));
        run_checked(guest, &command, cx, &step, &[0]).await
    }
}
