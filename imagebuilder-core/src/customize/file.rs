//! `File`: one file downloaded into the guest. As with AIB, the destination's directory must
//! already exist.

use async_trait::async_trait;

use super::{
    artifact, label, quote, staged, ArtifactRef, CustomizeError, Customizer, StepContext, StepInfo,
};
use crate::host::{ExecRequest, Guest};
use crate::template::model::{FileStep, OsType};

/// Runs a template's `File` step.
#[derive(Debug, Clone)]
pub struct FileCustomizer {
    step: FileStep,
}

impl FileCustomizer {
    /// The customizer for `step`.
    pub fn new(step: FileStep) -> Self {
        Self { step }
    }
}

/// The directory part of a guest path (`/`-separated, or `\` for Windows paths).
fn parent(path: &str) -> &str {
    let cut = path.rfind(['/', '\\']).unwrap_or(0);
    match &path[..cut] {
        "" => "/",
        dir if dir.ends_with(':') => &path[..=cut],
        dir => dir,
    }
}

#[async_trait]
impl Customizer for FileCustomizer {
    fn info(&self) -> StepInfo {
        StepInfo {
            kind: "File".into(),
            name: self.step.name.clone(),
        }
    }

    fn artifacts(&self) -> Vec<ArtifactRef> {
        vec![artifact(&self.step.source_uri, &self.step.sha256_checksum)]
    }

    async fn run(&self, guest: &dyn Guest, cx: &StepContext<'_>) -> Result<(), CustomizeError> {
        let step = label("File", self.step.name.as_deref(), cx.index);
        let destination = &self.step.destination;
        let dir = parent(destination);
        let check = match cx.os_type {
            OsType::Linux => format!("test -d {}", quote::sh(dir)),
            OsType::Windows => format!(
                "if (Test-Path -PathType Container {}) {{ exit 0 }} else {{ exit 1 }}",
                quote::ps(dir)
            ),
        };
        let exists = guest
            .exec(&ExecRequest::new(check), cx.output)
            .await
            .map_err(|source| CustomizeError::Guest {
                step: step.clone(),
                source,
            })?;
        if !exists.success() {
            return Err(CustomizeError::Precondition {
                step,
                message: format!("the directory {dir} of destination {destination} does not exist in the VM; create it in an earlier step"),
            });
        }
        let local = staged(cx, &step, &self.step.source_uri)?;
        guest
            .upload(local, destination)
            .await
            .map_err(|source| CustomizeError::Guest { step, source })
    }
}

#[cfg(test)]
mod tests {
    use super::parent;

    #[test]
    fn parents_of_guest_paths() {
        assert_eq!(parent("/tmp/motd"), "/tmp");
        assert_eq!(parent("/motd"), "/");
        assert_eq!(
            parent(r"c:\buildArtifacts\index.html"),
            r"c:\buildArtifacts"
        );
        assert_eq!(parent(r"c:\index.html"), r"c:\");
    }
}
