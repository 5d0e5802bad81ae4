//! Distributors: publishing the one captured image to each target of a template.
//!
//! The targets themselves (VHD, managed image, gallery, object store) live in
//! `imagebuilder-dist`; this module defines the contract and an in-memory target for tests.

mod error;
mod memory;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

pub use error::DistributeError;
pub use memory::{InMemoryDistributor, InMemoryTargets};

use crate::run::RunOutput;
use crate::template::model::{DiskFormat, DistributorSpec, HyperVGeneration, OsType, SecurityType};

/// The disk captured from the build VM: one immutable file every distributor reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedImage {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: DiskFormat,
    /// Virtual size of the disk in bytes.
    pub virtual_size: u64,
    /// Size of the file in bytes.
    pub size: u64,
    /// sha256 of the file, 64 lower-case hex digits.
    pub sha256: String,
    /// Operating system of the image.
    pub os_type: OsType,
    /// Generation, kept from the source.
    pub hyper_v_generation: HyperVGeneration,
    /// Security type, kept from the source.
    pub security_type: SecurityType,
    /// Version of the source image, for `versioning: Source`.
    pub source_version: Option<String>,
}

/// Receives how many bytes a distributor has published so far.
pub trait ProgressSink: Send + Sync {
    /// `done` of `total` bytes are published for `run_output_name`.
    fn bytes(&self, run_output_name: &str, done: u64, total: u64);
}

impl<F: Fn(&str, u64, u64) + Send + Sync> ProgressSink for F {
    fn bytes(&self, run_output_name: &str, done: u64, total: u64) {
        self(run_output_name, done, total)
    }
}

/// What a distributor may use besides the image.
pub struct DistributeContext<'a> {
    /// Name of the template being run.
    pub template_name: &'a str,
    /// Id of the run.
    pub run_id: &'a str,
    /// The template's staging area (AIB puts VHDs without a `uri` here).
    pub staging_dir: &'a Path,
    /// Receives progress.
    pub progress: &'a dyn ProgressSink,
}

/// Publishes a captured image to one target.
///
/// # Contract
/// - Reads `image.path` only; never modifies it (other distributors read it concurrently).
/// - The artifact becomes visible only once complete: a failed or cancelled distribution
///   leaves nothing half-published, and never touches artifacts published earlier.
/// - Returns the [`RunOutput`] of the published artifact, with the sha256 and size of what
///   was published.
///
/// # Errors
/// [`DistributeError`] says which target failed and why.
///
/// # Cancellation
/// Dropping the future stops publishing; whatever was written so far stays invisible and is
/// removed (or is removable by the next run).
#[async_trait]
pub trait Distributor: Send + Sync {
    /// The target's `runOutputName`.
    fn run_output_name(&self) -> &str;

    /// Publishes `image`.
    async fn distribute(
        &self,
        image: &CapturedImage,
        cx: &DistributeContext<'_>,
    ) -> Result<RunOutput, DistributeError>;
}

/// Makes the distributor for a template's `distribute[]` entry.
pub trait DistributorFactory: Send + Sync {
    /// The distributor for `spec`, or why there can be none.
    fn distributor(&self, spec: &DistributorSpec) -> Result<Arc<dyn Distributor>, DistributeError>;

    /// The distributors for all the targets of one run, in order. The engine calls this once
    /// per run, so distributors made together can share work, such as one read of the
    /// capture for every target. The default makes each with
    /// [`distributor`](DistributorFactory::distributor).
    fn distributors(
        &self,
        specs: &[&DistributorSpec],
    ) -> Vec<Result<Arc<dyn Distributor>, DistributeError>> {
        specs.iter().map(|spec| self.distributor(spec)).collect()
    }
}
