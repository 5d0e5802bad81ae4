//! `ObjectStore` targets (an extension of this library): the image as one file, in any
//! format, in any object store.

use async_trait::async_trait;
use imagebuilder_core::distribute::{
    CapturedImage, DistributeContext, DistributeError, Distributor,
};
use imagebuilder_core::run::RunOutput;
use imagebuilder_core::template::model::{ObjectStoreTarget, OutputFormat};

use super::{failed, file_in, TicketSlot};
use crate::publish::{write_one, Destination, Output};

/// Writes the capture in the target's format to its `uri`. A `uri` ending in `/` is a
/// folder: the file is then named after the target, `RUN_OUTPUT_NAME.EXT`.
#[derive(Debug)]
pub struct ObjectStoreDistributor {
    target: ObjectStoreTarget,
    ticket: TicketSlot,
}

impl ObjectStoreDistributor {
    /// A distributor for `target`.
    pub fn new(target: ObjectStoreTarget) -> Self {
        Self {
            target,
            ticket: TicketSlot::default(),
        }
    }

    pub(crate) fn with_ticket(mut self, ticket: TicketSlot) -> Self {
        self.ticket = ticket;
        self
    }

    fn uri(&self) -> String {
        let t = &self.target;
        file_in(&t.uri, &t.run_output_name, t.format.extension())
    }
}

#[async_trait]
impl Distributor for ObjectStoreDistributor {
    fn run_output_name(&self) -> &str {
        &self.target.run_output_name
    }

    async fn distribute(
        &self,
        image: &CapturedImage,
        cx: &DistributeContext<'_>,
    ) -> Result<RunOutput, DistributeError> {
        let name = &self.target.run_output_name;
        let ticket = self.ticket.take();
        // A fixed VHD bound for Azure goes as a page blob, as with VHD targets.
        let destination =
            Destination::from_uri(&self.uri(), self.target.format == OutputFormat::VhdFixed);
        let uri = destination.uri();
        let output = Output {
            feed: ticket.feeds(image, 1).remove(0),
            format: self.target.format,
            destination,
            digest: self.target.sha256,
        };
        let written = write_one(output, image, name, cx)
            .await
            .map_err(|e| failed(name, &format!("write {uri}"), e))?;
        Ok(RunOutput {
            run_output_name: name.clone(),
            artifact_id: uri.clone(),
            artifact_uri: uri,
            sha256: written.sha256,
            size: written.size,
            tags: self.target.artifact_tags.clone(),
        })
    }
}
