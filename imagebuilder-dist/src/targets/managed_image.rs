//! `ManagedImage` targets: a qcow2 disk in the region's store, recorded by image id.

use std::sync::Arc;

use async_trait::async_trait;
use imagebuilder_core::distribute::{
    CapturedImage, DistributeContext, DistributeError, Distributor,
};
use imagebuilder_core::environment::Environment;
use imagebuilder_core::run::RunOutput;
use imagebuilder_core::template::model::{ManagedImageTarget, OutputFormat};

use super::{blocking, failed, join_url, registry_error, rejected, TicketSlot};
use crate::publish::{remove_outputs, write_all, Destination, Output};
use crate::registry::{ManagedImage, ManagedImageStore};

/// Makes a managed image: the disk goes to the object store of the target's `location`, and
/// the image exists once its record is written. An existing image is never replaced.
#[derive(Debug)]
pub struct ManagedImageDistributor {
    target: ManagedImageTarget,
    store: ManagedImageStore,
    environment: Arc<Environment>,
    ticket: TicketSlot,
}

impl ManagedImageDistributor {
    /// A distributor for `target`, recording in `store`, with regions from `environment`.
    pub fn new(
        target: ManagedImageTarget,
        store: ManagedImageStore,
        environment: Arc<Environment>,
    ) -> Self {
        Self {
            target,
            store,
            environment,
            ticket: TicketSlot::default(),
        }
    }

    pub(crate) fn with_ticket(mut self, ticket: TicketSlot) -> Self {
        self.ticket = ticket;
        self
    }
}

#[async_trait]
impl Distributor for ManagedImageDistributor {
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
        let region_url = self
            .environment
            .region_store(&self.target.location)
            .map_err(|e| rejected(name, format!("location: {e}")))?;
        let store = self.store.clone();
        let id = self.target.image_id.clone();
        let reservation = blocking(name, move || store.reserve(&id))
            .await?
            .map_err(|e| registry_error(name, e))?;
        let extension = OutputFormat::Qcow2.extension();
        let destination = Destination::from_uri(
            &join_url(&region_url, &reservation.object_path(extension)),
            false,
        );
        let uri = destination.uri();
        let output = Output {
            feed: ticket.feeds(image, 1).remove(0),
            format: OutputFormat::Qcow2,
            destination: destination.clone(),
            digest: true,
        };
        // The writer keeps the id reserved until it is done, even if this future is dropped.
        let reservation = Arc::new(reservation);
        let written = write_all(vec![output], image, name, cx, reservation.clone())
            .await
            .remove(0)
            .map_err(|e| failed(name, &format!("write the image's disk to {uri}"), e))?;
        let reservation = Arc::try_unwrap(reservation).map_err(|_| {
            failed(
                name,
                "record the image",
                "internal error: the reservation is still shared".into(),
            )
        })?;
        let record = ManagedImage {
            id: String::new(),
            location: self.target.location.clone(),
            os_type: image.os_type,
            hyper_v_generation: image.hyper_v_generation,
            security_type: image.security_type,
            uri: uri.clone(),
            format: OutputFormat::Qcow2.disk_format(),
            sha256: written.sha256.clone(),
            size: written.size,
            virtual_size: image.virtual_size,
            tags: self.target.artifact_tags.clone(),
            created: String::new(),
        };
        let committed = match blocking(name, move || reservation.commit(record)).await? {
            Ok(committed) => committed,
            Err(e) => {
                remove_outputs(&[destination]).await;
                return Err(registry_error(name, e));
            }
        };
        Ok(RunOutput {
            run_output_name: name.clone(),
            artifact_id: committed.id,
            artifact_uri: uri,
            sha256: written.sha256,
            size: written.size,
            tags: self.target.artifact_tags.clone(),
        })
    }
}
