//! The distributor factory for builds on this machine.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use imagebuilder_core::distribute::{DistributeError, Distributor, DistributorFactory};
use imagebuilder_core::environment::Environment;
use imagebuilder_core::template::model::DistributorSpec;

use crate::publish::SharedCapture;
use crate::registry::{galleries_in, managed_images_in, GalleryStore, ManagedImageStore};
use crate::targets::TicketSlot;
use crate::{GalleryDistributor, ManagedImageDistributor, ObjectStoreDistributor, VhdDistributor};

/// Makes every distributor this crate has, sharing one read of the capture among the
/// targets of a run: `VHD`, `ManagedImage`, `SharedImage` and `ObjectStore`.
#[derive(Debug, Clone)]
pub struct LocalTargets {
    environment: Arc<Environment>,
    galleries: GalleryStore,
    managed_images: ManagedImageStore,
    capture_reads: Arc<AtomicU64>,
}

impl LocalTargets {
    /// Targets whose registries live in `state_dir` (`galleries/`, `managed-images/`) and
    /// whose regions `environment` maps to object stores.
    pub fn new(state_dir: &Path, environment: Environment) -> Self {
        Self::with_registries(
            environment,
            galleries_in(state_dir),
            managed_images_in(state_dir),
        )
    }

    /// Targets using the given registries.
    pub fn with_registries(
        environment: Environment,
        galleries: GalleryStore,
        managed_images: ManagedImageStore,
    ) -> Self {
        Self {
            environment: Arc::new(environment),
            galleries,
            managed_images,
            capture_reads: Arc::default(),
        }
    }

    /// The galleries targets publish to.
    pub fn galleries(&self) -> &GalleryStore {
        &self.galleries
    }

    /// The managed images targets make.
    pub fn managed_images(&self) -> &ManagedImageStore {
        &self.managed_images
    }

    /// How many times distributors made by this factory have read a capture: once per run,
    /// whatever the number of targets and regions.
    pub fn capture_reads(&self) -> u64 {
        self.capture_reads.load(Ordering::Relaxed)
    }

    fn make(&self, spec: &DistributorSpec, ticket: TicketSlot) -> Arc<dyn Distributor> {
        match spec {
            DistributorSpec::Vhd(t) => Arc::new(
                VhdDistributor::new(&t.run_output_name, &t.uri, t.artifact_tags.clone())
                    .with_sha256(t.sha256)
                    .with_ticket(ticket),
            ),
            DistributorSpec::ManagedImage(t) => Arc::new(
                ManagedImageDistributor::new(
                    t.clone(),
                    self.managed_images.clone(),
                    self.environment.clone(),
                )
                .with_ticket(ticket),
            ),
            DistributorSpec::SharedImage(t) => Arc::new(
                GalleryDistributor::new(
                    t.clone(),
                    self.galleries.clone(),
                    self.environment.clone(),
                )
                .with_ticket(ticket),
            ),
            DistributorSpec::ObjectStore(t) => {
                Arc::new(ObjectStoreDistributor::new(t.clone()).with_ticket(ticket))
            }
        }
    }
}

impl DistributorFactory for LocalTargets {
    fn distributor(&self, spec: &DistributorSpec) -> Result<Arc<dyn Distributor>, DistributeError> {
        let (_, mut tickets) = SharedCapture::new(1, self.capture_reads.clone());
        Ok(self.make(spec, TicketSlot::new(tickets.remove(0))))
    }

    fn distributors(
        &self,
        specs: &[&DistributorSpec],
    ) -> Vec<Result<Arc<dyn Distributor>, DistributeError>> {
        let (_, tickets) = SharedCapture::new(specs.len(), self.capture_reads.clone());
        specs
            .iter()
            .zip(tickets)
            .map(|(spec, ticket)| Ok(self.make(spec, TicketSlot::new(ticket))))
            .collect()
    }
}
