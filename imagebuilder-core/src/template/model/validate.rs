//! `properties.validate`: checks run on the built image before it is distributed.

use serde::Serialize;

use super::{FileStep, PowerShellStep, ShellStep};

/// `properties.validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// Distribute even when validation fails (the run is still reported as failed).
    pub continue_distribute_on_failure: bool,
    /// Validate the source image directly; no build happens.
    pub source_validation_only: bool,
    /// The validators, run in order in a validation VM.
    #[serde(rename = "inVMValidations")]
    pub in_vm_validations: Vec<ValidatorSpec>,
}

/// One validator (`inVMValidations[i]`, discriminated by `type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum ValidatorSpec {
    /// A shell script whose failure fails validation.
    Shell(ShellStep),
    /// A PowerShell script whose failure fails validation.
    PowerShell(PowerShellStep),
    /// A file placed in the validation VM (api-version 2022-07-01 and later).
    File(FileStep),
}
