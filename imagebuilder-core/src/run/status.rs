//! AIB's status enums, with the spellings AIB's REST API uses.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// `lastRunStatus.runState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunState {
    /// The run is in progress; `runSubState` says where.
    Running,
    /// A cancel was requested and the run is stopping.
    Canceling,
    /// Every phase succeeded and every target was published.
    Succeeded,
    /// The image was built but some targets failed.
    PartiallySucceeded,
    /// The run failed (including a failed validation and a timeout).
    Failed,
    /// The run was cancelled.
    Canceled,
}

impl RunState {
    /// Every state.
    pub const ALL: [RunState; 6] = [
        Self::Running,
        Self::Canceling,
        Self::Succeeded,
        Self::PartiallySucceeded,
        Self::Failed,
        Self::Canceled,
    ];

    /// True once the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::PartiallySucceeded | Self::Failed | Self::Canceled
        )
    }
}

/// `lastRunStatus.runSubState`: the phase a run is in (or ended in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RunSubState {
    /// Accepted, not started.
    Queued,
    /// Fetching artifacts and provisioning the build VM.
    Building,
    /// Running customizers, then generalizing and capturing.
    Customizing,
    /// Optimizing the captured image.
    Optimizing,
    /// Running validators against the captured (or source) image.
    Validating,
    /// Publishing the capture to every target.
    Distributing,
}

impl RunSubState {
    /// Every sub-state, in the order a run passes through them.
    pub const ALL: [RunSubState; 6] = [
        Self::Queued,
        Self::Building,
        Self::Customizing,
        Self::Optimizing,
        Self::Validating,
        Self::Distributing,
    ];
}

/// `lastRunStatus` of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastRunStatus {
    /// When the run started.
    #[serde(with = "time::serde::rfc3339")]
    pub start_time: OffsetDateTime,
    /// When the run ended; absent while it runs.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub end_time: Option<OffsetDateTime>,
    /// Overall state.
    pub run_state: RunState,
    /// Phase.
    pub run_sub_state: RunSubState,
    /// What happened, for a person: the error of a failed run, where logs are.
    pub message: String,
}

/// `provisioningState` of the template resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProvisioningState {
    /// Being created.
    Creating,
    /// Being patched.
    Updating,
    /// Created and valid.
    Succeeded,
    /// Creation failed; `provisioningError` says why.
    Failed,
    /// Being deleted.
    Deleting,
    /// Creation was cancelled.
    Canceled,
}

/// `provisioningError` of the template resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningError {
    /// AIB's code, e.g. `BadCustomizerType`.
    pub provisioning_error_code: String,
    /// What went wrong.
    pub message: String,
}
