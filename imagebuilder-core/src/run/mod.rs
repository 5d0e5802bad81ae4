//! What a run of a template produces and reports: AIB's run states, the last run's status,
//! the template resource's provisioning state, and run outputs.

mod output;
mod status;

pub use output::RunOutput;
pub use status::{LastRunStatus, ProvisioningError, ProvisioningState, RunState, RunSubState};
