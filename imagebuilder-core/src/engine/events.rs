//! Progress of a run as typed events.

use std::time::Duration;

use serde::Serialize;

use crate::customize::StepInfo;
use crate::host::{OutputStream, VmAccess, VmPurpose};
use crate::run::{RunState, RunSubState};

/// Something that happened during a run. Serialized with `event` naming the variant, one
/// JSON object per line in the CLI's `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
#[non_exhaustive]
pub enum BuildEvent {
    /// runState or runSubState changed.
    #[serde(rename_all = "camelCase")]
    StateChanged {
        /// New state.
        run_state: RunState,
        /// New sub-state.
        run_sub_state: RunSubState,
    },
    /// An artifact was fetched and its checksum verified.
    #[serde(rename_all = "camelCase")]
    ArtifactStaged {
        /// Where from (query string removed).
        uri: String,
        /// Its sha256.
        sha256: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The source was resolved.
    #[serde(rename_all = "camelCase")]
    SourceResolved {
        /// The base disk.
        location: String,
        /// The version `latest` resolved to.
        exact_version: Option<String>,
    },
    /// A VM is up.
    #[serde(rename_all = "camelCase")]
    VmProvisioned {
        /// Build or validation.
        purpose: VmPurpose,
        /// Its id.
        vm_id: String,
    },
    /// A step started.
    #[serde(rename_all = "camelCase")]
    StepStarted {
        /// The phase.
        phase: RunSubState,
        /// Position in its list.
        index: usize,
        /// What it is.
        step: StepInfo,
    },
    /// A step ended.
    #[serde(rename_all = "camelCase")]
    StepFinished {
        /// The phase.
        phase: RunSubState,
        /// Position in its list.
        index: usize,
        /// What it is.
        step: StepInfo,
        /// How long it took.
        #[serde(with = "millis")]
        duration: Duration,
        /// Its error, if it failed.
        error: Option<String>,
    },
    /// A line the guest printed.
    #[serde(rename_all = "camelCase")]
    GuestOutput {
        /// Stream.
        stream: OutputStream,
        /// The line.
        line: String,
    },
    /// The image was captured.
    #[serde(rename_all = "camelCase")]
    Captured {
        /// Size in bytes of the file.
        size: u64,
        /// Its sha256.
        sha256: String,
    },
    /// Bytes published to a target so far.
    #[serde(rename_all = "camelCase")]
    BytesDistributed {
        /// The target.
        run_output_name: String,
        /// Bytes published.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// A target finished.
    #[serde(rename_all = "camelCase")]
    TargetFinished {
        /// The target.
        run_output_name: String,
        /// Its artifact id, when published.
        artifact_id: Option<String>,
        /// Its error, when it failed.
        error: Option<String>,
    },
    /// A failed phase's VM was kept (`errorHandling: abort`).
    #[serde(rename_all = "camelCase")]
    VmKept {
        /// How to reach and remove it.
        access: VmAccess,
    },
}

mod millis {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Receives a run's events, in order, from the task running it.
pub trait EventSink: Send + Sync {
    /// One event.
    fn emit(&self, event: BuildEvent);
}

impl<F: Fn(BuildEvent) + Send + Sync> EventSink for F {
    fn emit(&self, event: BuildEvent) {
        self(event)
    }
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _: BuildEvent) {}
}
