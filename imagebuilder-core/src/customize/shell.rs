//! `Shell`: a script run as the non-root build user (scripts use `sudo` where they need it,
//! as with AIB).

use async_trait::async_trait;

use super::{
    artifact, label, quote, run_checked, staged, upload_text, ArtifactRef, CustomizeError,
    Customizer, StepContext, StepInfo,
};
use crate::host::{ExecRequest, Guest};
use crate::template::model::{Script, ShellStep};

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
        match &self.step.script {
            Script::ScriptUri(uri) => vec![artifact(uri, &self.step.sha256_checksum)],
            Script::Inline(_) => Vec::new(),
        }
    }

    async fn run(&self, guest: &dyn Guest, cx: &StepContext<'_>) -> Result<(), CustomizeError> {
        let step = label("Shell", self.step.name.as_deref(), cx.index);
        let remote = format!("/tmp/imagebuilder-step-{}.sh", cx.index);
        match &self.step.script {
            Script::Inline(lines) => {
                upload_text(guest, cx, &step, &inline_script(lines), &remote).await?
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
        let path = quote::sh(&remote);
        let command = ExecRequest::new(format!(
            "chmod +x {path} && {path}; status=$?; rm -f {path}; exit $status"
        ));
        run_checked(guest, &command, cx, &step, &[0]).await
    }
}
