//! What the engine runs: the [`Template`] trait, implemented by the AIB model
//! ([`ImageTemplate`]) and by templates made in code with [`TemplateBuilder`].

mod builder;

use std::sync::Arc;
use std::time::Duration;

pub use builder::{BuiltTemplate, NoSource, NoTarget, TemplateBuilder, WithSource, WithTarget};

use crate::customize::{self, Customizer};
use crate::distribute::Distributor;
use crate::template::model::{
    CustomizerSpec, DistributorSpec, ErrorHandling, Script, SourceSpec, ValidatorSpec, VmProfile,
};
use crate::template::ImageTemplate;

/// A distribution target: a template entry the engine's factory turns into a distributor, or
/// a distributor given directly.
#[derive(Clone)]
pub enum Target {
    /// A `distribute[]` entry.
    Spec(DistributorSpec),
    /// A distributor made by the program.
    Custom(Arc<dyn Distributor>),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Spec(spec) => f.debug_tuple("Spec").field(spec).finish(),
            Self::Custom(d) => f.debug_tuple("Custom").field(&d.run_output_name()).finish(),
        }
    }
}

impl Target {
    /// The target's runOutputName.
    pub fn run_output_name(&self) -> &str {
        match self {
            Self::Spec(spec) => spec.run_output_name(),
            Self::Custom(d) => d.run_output_name(),
        }
    }
}

/// Validation of the built image.
#[derive(Clone, Default)]
pub struct ValidationPlan {
    /// Validators, run in order in a VM booted from the capture (or the source).
    pub validators: Vec<Arc<dyn Customizer>>,
    /// Distribute even when validation fails (the run still fails).
    pub continue_distribute_on_failure: bool,
    /// Validate the source image; build nothing.
    pub source_validation_only: bool,
}

/// A template the engine can run.
///
/// # Contract
/// Every method returns the same answer each time it is called during a run.
///
/// # Errors
/// None: a template is valid by construction (the parser and the builder check).
///
/// # Cancellation
/// Nothing here is async.
pub trait Template: Send + Sync {
    /// Name used for logs, staging and run outputs.
    fn name(&self) -> &str;
    /// The image to start from.
    fn source(&self) -> &SourceSpec;
    /// Customization steps in order (generalize is added by the engine).
    fn customizers(&self) -> Vec<Arc<dyn Customizer>>;
    /// Validation, if any.
    fn validation(&self) -> ValidationPlan;
    /// Distribution targets; at least one.
    fn targets(&self) -> Vec<Target>;
    /// Deadline over all phases.
    fn build_timeout(&self) -> Duration;
    /// The build VM's profile.
    fn vm_profile(&self) -> VmProfile;
    /// What to do with a failed phase's VM.
    fn error_handling(&self) -> ErrorHandling;
    /// Whether the optimize phase runs.
    fn optimize(&self) -> bool;
    /// Values that must never appear in the run's log, events or report (secure deployment
    /// parameters, credentials a step carries); none by default.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }
}

impl Template for ImageTemplate {
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("template")
    }

    fn secrets(&self) -> Vec<String> {
        let steps = self
            .properties
            .customize
            .iter()
            .filter_map(|step| match step {
                CustomizerSpec::Shell(s) if s.sensitive => Some(&s.script),
                CustomizerSpec::PowerShell(s) if s.sensitive => Some(&s.script),
                _ => None,
            });
        let checks = self
            .properties
            .validate
            .iter()
            .flat_map(|v| &v.in_vm_validations);
        let checks = checks.filter_map(|step| match step {
            ValidatorSpec::Shell(s) if s.sensitive => Some(&s.script),
            ValidatorSpec::PowerShell(s) if s.sensitive => Some(&s.script),
            _ => None,
        });
        let mut secrets = self.secrets.clone();
        secrets.extend(steps.chain(checks).flat_map(Script::secret_texts));
        secrets
    }

    fn source(&self) -> &SourceSpec {
        &self.properties.source
    }

    fn customizers(&self) -> Vec<Arc<dyn Customizer>> {
        self.properties
            .customize
            .iter()
            .map(customize::for_spec)
            .collect()
    }

    fn validation(&self) -> ValidationPlan {
        let Some(validate) = &self.properties.validate else {
            return ValidationPlan::default();
        };
        ValidationPlan {
            validators: validate
                .in_vm_validations
                .iter()
                .map(customize::for_validator)
                .collect(),
            continue_distribute_on_failure: validate.continue_distribute_on_failure,
            source_validation_only: validate.source_validation_only,
        }
    }

    fn targets(&self) -> Vec<Target> {
        self.properties
            .distribute
            .iter()
            .cloned()
            .map(Target::Spec)
            .collect()
    }

    fn build_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.properties.effective_build_timeout_minutes()) * 60)
    }

    fn vm_profile(&self) -> VmProfile {
        self.properties.vm_profile.clone()
    }

    fn error_handling(&self) -> ErrorHandling {
        self.properties.effective_error_handling()
    }

    fn optimize(&self) -> bool {
        use crate::template::model::FeatureState::Enabled;
        self.properties.optimize.as_ref().is_some_and(|o| {
            o.vm_boot.as_ref().is_some_and(|b| b.state == Enabled)
                || o.workload.as_ref().is_some_and(|w| w.state == Enabled)
        })
    }
}
