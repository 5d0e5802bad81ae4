//! `VHD` targets: the capture as a fixed VHD, the format Azure needs to make a disk.
//!
//! Until the native writer of issue #5 exists this converts with `qemu-img`
//! (`-O vpc -o subformat=fixed,force_size`, after rounding the virtual size up to a whole MiB,
//! as Azure's own instructions do).

use std::ffi::OsString;
use std::path::PathBuf;

use async_trait::async_trait;
use imagebuilder_core::distribute::{
    CapturedImage, DistributeContext, DistributeError, Distributor,
};
use imagebuilder_core::run::RunOutput;
use imagebuilder_core::template::model::DiskFormat;

const MIB: u64 = 1 << 20;

/// Writes the capture as a fixed VHD to a local file.
#[derive(Debug, Clone)]
pub struct VhdDistributor {
    run_output_name: String,
    /// The target's `uri`; empty means the template's staging area, as with AIB.
    uri: String,
    tags: std::collections::BTreeMap<String, String>,
}

impl VhdDistributor {
    /// A distributor for the target `run_output_name` writing to `uri` (`file://...`, a local
    /// path, or empty for the staging area).
    pub fn new(
        run_output_name: &str,
        uri: &str,
        tags: std::collections::BTreeMap<String, String>,
    ) -> Self {
        Self {
            run_output_name: run_output_name.to_owned(),
            uri: uri.to_owned(),
            tags,
        }
    }

    fn error(
        &self,
        operation: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> DistributeError {
        DistributeError::Failed {
            run_output_name: self.run_output_name.clone(),
            operation: operation.to_owned(),
            source: source.into(),
        }
    }

    /// Where the VHD goes.
    fn destination(&self, cx: &DistributeContext<'_>) -> Result<PathBuf, DistributeError> {
        if self.uri.is_empty() {
            return Ok(cx
                .staging_dir
                .join("outputs")
                .join(cx.run_id)
                .join(format!("{}.vhd", self.run_output_name)));
        }
        let path = self.uri.strip_prefix("file://").unwrap_or(&self.uri);
        if !path.starts_with('/') {
            return Err(DistributeError::Unsupported {
                run_output_name: self.run_output_name.clone(),
                message: format!("VHD uri '{}' is not a local file; blob and object-store targets arrive with issue #5", self.uri),
            });
        }
        Ok(PathBuf::from(path))
    }
}

async fn qemu_img(args: Vec<OsString>) -> Result<(), String> {
    let output = tokio::process::Command::new("qemu-img")
        .args(&args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("running qemu-img: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "qemu-img {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[async_trait]
impl Distributor for VhdDistributor {
    fn run_output_name(&self) -> &str {
        &self.run_output_name
    }

    async fn distribute(
        &self,
        image: &CapturedImage,
        cx: &DistributeContext<'_>,
    ) -> Result<RunOutput, DistributeError> {
        let destination = self.destination(cx)?;
        let dir = destination
            .parent()
            .ok_or_else(|| self.error("choose the VHD's directory", "no parent directory"))?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| self.error(&format!("create {}", dir.display()), e))?;
        // Written beside the destination and renamed: a failed run never leaves a partial VHD
        // under the final name, and never touches one published earlier.
        let partial = destination.with_extension("vhd.partial");
        let mut source = image.path.clone();
        let mut source_format = image.format;
        let rounded = image.virtual_size.div_ceil(MIB) * MIB;
        let raw = destination.with_extension("raw.partial");
        let result = async {
            if rounded != image.virtual_size {
                qemu_img(vec![
                    "convert".into(),
                    "-q".into(),
                    "-f".into(),
                    image.format.qemu_name().into(),
                    "-O".into(),
                    "raw".into(),
                    image.path.clone().into(),
                    raw.clone().into(),
                ])
                .await?;
                qemu_img(vec![
                    "resize".into(),
                    "-q".into(),
                    "-f".into(),
                    "raw".into(),
                    raw.clone().into(),
                    rounded.to_string().into(),
                ])
                .await?;
                source = raw.clone();
                source_format = DiskFormat::Raw;
            }
            qemu_img(vec![
                "convert".into(),
                "-q".into(),
                "-f".into(),
                source_format.qemu_name().into(),
                "-O".into(),
                "vpc".into(),
                "-o".into(),
                "subformat=fixed,force_size".into(),
                source.clone().into(),
                partial.clone().into(),
            ])
            .await
        }
        .await;
        let _ = tokio::fs::remove_file(&raw).await;
        if let Err(message) = result {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(self.error("write the VHD", message));
        }
        tokio::fs::rename(&partial, &destination)
            .await
            .map_err(|e| self.error(&format!("move the VHD to {}", destination.display()), e))?;
        let (sha256, size) = imagebuilder_core::artifacts::sha256_file(&destination)
            .await
            .map_err(|e| self.error("hash the VHD", e))?;
        cx.progress.bytes(&self.run_output_name, size, size);
        let uri = format!("file://{}", destination.display());
        Ok(RunOutput {
            run_output_name: self.run_output_name.clone(),
            artifact_id: uri.clone(),
            artifact_uri: uri,
            sha256,
            size,
            tags: self.tags.clone(),
        })
    }
}
