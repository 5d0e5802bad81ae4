//! An in-memory target, for tests of engines and pipelines.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{CapturedImage, DistributeContext, DistributeError, Distributor, DistributorFactory};
use crate::run::RunOutput;
use crate::template::model::DistributorSpec;

/// Published images by runOutputName, shared by every [`InMemoryDistributor`] a factory makes.
#[derive(Debug, Clone, Default)]
pub struct InMemoryTargets {
    published: Arc<Mutex<BTreeMap<String, Bytes>>>,
    failing: Arc<Mutex<BTreeSet<String>>>,
    delays: Arc<Mutex<BTreeMap<String, Duration>>>,
}

impl InMemoryTargets {
    /// No targets published, none failing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the target `run_output_name` fail when it distributes.
    pub fn fail(&self, run_output_name: &str) {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(run_output_name.to_owned());
    }

    /// Makes the target `run_output_name` take `delay` before it publishes.
    pub fn delay(&self, run_output_name: &str, delay: Duration) {
        self.delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(run_output_name.to_owned(), delay);
    }

    /// The bytes published under `run_output_name`.
    pub fn published(&self, run_output_name: &str) -> Option<Bytes> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(run_output_name)
            .cloned()
    }

    /// Every runOutputName published so far.
    pub fn names(&self) -> Vec<String> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// A distributor publishing to `run_output_name` here.
    pub fn distributor(&self, run_output_name: &str) -> InMemoryDistributor {
        InMemoryDistributor {
            run_output_name: run_output_name.to_owned(),
            targets: self.clone(),
        }
    }
}

impl DistributorFactory for InMemoryTargets {
    /// Every kind of target is published in memory under its runOutputName.
    fn distributor(&self, spec: &DistributorSpec) -> Result<Arc<dyn Distributor>, DistributeError> {
        Ok(Arc::new(InMemoryTargets::distributor(
            self,
            spec.run_output_name(),
        )))
    }
}

/// Publishes the captured image's bytes into an [`InMemoryTargets`].
#[derive(Debug, Clone)]
pub struct InMemoryDistributor {
    run_output_name: String,
    targets: InMemoryTargets,
}

#[async_trait]
impl Distributor for InMemoryDistributor {
    fn run_output_name(&self) -> &str {
        &self.run_output_name
    }

    async fn distribute(
        &self,
        image: &CapturedImage,
        cx: &DistributeContext<'_>,
    ) -> Result<RunOutput, DistributeError> {
        let name = &self.run_output_name;
        let failing = self
            .targets
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(name);
        let delay = self
            .targets
            .delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if failing {
            return Err(DistributeError::Rejected {
                run_output_name: name.clone(),
                message: "this in-memory target was told to fail".into(),
            });
        }
        let bytes = tokio::fs::read(&image.path)
            .await
            .map_err(|e| DistributeError::Failed {
                run_output_name: name.clone(),
                operation: format!("read {}", image.path.display()),
                source: Box::new(e),
            })?;
        let size = bytes.len() as u64;
        cx.progress.bytes(name, size, size);
        self.targets
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone(), Bytes::from(bytes));
        Ok(RunOutput {
            run_output_name: name.clone(),
            artifact_id: format!("memory://{}/{name}", cx.template_name),
            artifact_uri: format!("memory://{}/{name}", cx.template_name),
            sha256: image.sha256.clone(),
            size,
            tags: Default::default(),
        })
    }
}
