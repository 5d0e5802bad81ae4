//! The result of a run.

use serde::Serialize;
use time::OffsetDateTime;

use crate::host::VmAccess;
use crate::run::{RunOutput, RunState, RunSubState};

/// A target that was not published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetFailure {
    /// The target.
    pub run_output_name: String,
    /// Why.
    pub message: String,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Id of the run.
    pub run_id: String,
    /// Final runState.
    pub run_state: RunState,
    /// The phase it ended in.
    pub run_sub_state: RunSubState,
    /// What happened, for a person; the first error of a failed run.
    pub message: String,
    /// Published targets.
    pub outputs: Vec<RunOutput>,
    /// Targets that failed.
    pub failures: Vec<TargetFailure>,
    /// The source version `latest` resolved to.
    pub exact_version: Option<String>,
    /// The VM kept for debugging (`errorHandling: abort`).
    pub kept_vm: Option<VmAccess>,
    /// When the run started.
    #[serde(with = "time::serde::rfc3339")]
    pub start_time: OffsetDateTime,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339")]
    pub end_time: OffsetDateTime,
}
