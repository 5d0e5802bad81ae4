//! `VHD` targets: the capture as a fixed VHD, the format Azure makes disks from.

use std::collections::BTreeMap;

use async_trait::async_trait;
use imagebuilder_core::distribute::{
    CapturedImage, DistributeContext, DistributeError, Distributor,
};
use imagebuilder_core::run::RunOutput;
use imagebuilder_core::template::model::OutputFormat;

use super::{failed, file_in, TicketSlot};
use crate::publish::{write_one, Destination, Output};

/// Writes the capture as a fixed VHD (virtual size rounded up to a whole MiB, as Azure
/// requires) to a file, an Azure page blob, or any object store.
#[derive(Debug)]
pub struct VhdDistributor {
    run_output_name: String,
    uri: String,
    tags: BTreeMap<String, String>,
    sha256: bool,
    ticket: TicketSlot,
}

impl VhdDistributor {
    /// A distributor for target `run_output_name` writing to `uri`: a path or `file://`
    /// URL, `az://` or an Azure blob `https://` URL (written as a page blob), `s3://`,
    /// `gs://`, or empty for the template's staging area (as AIB does). A `uri` ending in `/`
    /// is a folder: the VHD is then `RUN_OUTPUT_NAME.vhd` in it.
    pub fn new(run_output_name: &str, uri: &str, tags: BTreeMap<String, String>) -> Self {
        Self {
            run_output_name: run_output_name.to_owned(),
            uri: uri.to_owned(),
            tags,
            sha256: false,
            ticket: TicketSlot::default(),
        }
    }

    /// Records the VHD's sha256 in the run output (hashing every byte, zeros included).
    pub fn with_sha256(mut self, sha256: bool) -> Self {
        self.sha256 = sha256;
        self
    }

    pub(crate) fn with_ticket(mut self, ticket: TicketSlot) -> Self {
        self.ticket = ticket;
        self
    }

    fn destination(&self, cx: &DistributeContext<'_>) -> Destination {
        if self.uri.is_empty() {
            return Destination::File(
                cx.staging_dir
                    .join("outputs")
                    .join(cx.run_id)
                    .join(format!("{}.vhd", self.run_output_name)),
            );
        }
        Destination::from_uri(&file_in(&self.uri, &self.run_output_name, "vhd"), true)
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
        let ticket = self.ticket.take();
        let destination = self.destination(cx);
        let uri = destination.uri();
        let feed = ticket.feeds(image, 1).remove(0);
        let output = Output {
            feed,
            format: OutputFormat::VhdFixed,
            destination,
            digest: self.sha256,
        };
        let written = write_one(output, image, &self.run_output_name, cx)
            .await
            .map_err(|e| failed(&self.run_output_name, &format!("write the VHD to {uri}"), e))?;
        Ok(RunOutput {
            run_output_name: self.run_output_name.clone(),
            artifact_id: uri.clone(),
            artifact_uri: uri,
            sha256: written.sha256,
            size: written.size,
            tags: self.tags.clone(),
        })
    }
}
