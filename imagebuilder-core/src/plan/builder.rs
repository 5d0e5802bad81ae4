//! Making a template in code. The type parameters make a template without a source or without
//! a target a compile error:
//!
//! ```compile_fail
//! use imagebuilder_core::plan::TemplateBuilder;
//! let template = TemplateBuilder::new("no-source").build(); // no source, no target
//! ```

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::{Target, Template, ValidationPlan};
use crate::customize::{self, Customizer};
use crate::distribute::Distributor;
use crate::template::model::{
    CustomizerSpec, DistributorSpec, ErrorHandling, SourceSpec, VmProfile,
};

/// Builder state: no source yet.
#[derive(Debug)]
pub struct NoSource;
/// Builder state: the source is set.
#[derive(Debug)]
pub struct WithSource(SourceSpec);
/// Builder state: no target yet.
#[derive(Debug)]
pub struct NoTarget;
/// Builder state: at least one target.
#[derive(Debug)]
pub struct WithTarget;

/// Builds a [`BuiltTemplate`] without JSON.
///
/// ```
/// use std::time::Duration;
/// use imagebuilder_core::plan::{Template, TemplateBuilder};
/// use imagebuilder_core::template::model::{DiskImageSource, SourceSpec};
/// use imagebuilder_core::distribute::InMemoryTargets;
///
/// let targets = InMemoryTargets::new();
/// let template = TemplateBuilder::new("web")
///     .source(SourceSpec::DiskImage(DiskImageSource {
///         uri: "file:///images/base.qcow2".into(),
///         format: None,
///         sha256_checksum: String::new(),
///         os_type: None,
///         hyper_v_generation: None,
///         security_type: None,
///     }))
///     .shell(["sudo apt-get install -y nginx"])
///     .distribute_to(targets.distributor("web-image"))
///     .build_timeout(Duration::from_secs(3600))
///     .build();
/// assert_eq!(template.name(), "web");
/// assert_eq!(template.customizers().len(), 1);
/// ```
pub struct TemplateBuilder<S, T> {
    name: String,
    source: S,
    customizers: Vec<Arc<dyn Customizer>>,
    validation: ValidationPlan,
    targets: Vec<Target>,
    build_timeout: Duration,
    vm_profile: VmProfile,
    error_handling: ErrorHandling,
    optimize: bool,
    target_state: PhantomData<T>,
}

impl TemplateBuilder<NoSource, NoTarget> {
    /// A template named `name`, with AIB's defaults: 240 minutes, default VM profile, cleanup
    /// on errors.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            source: NoSource,
            customizers: Vec::new(),
            validation: ValidationPlan::default(),
            targets: Vec::new(),
            build_timeout: Duration::from_secs(240 * 60),
            vm_profile: VmProfile::default(),
            error_handling: ErrorHandling::default(),
            optimize: false,
            target_state: PhantomData,
        }
    }
}

impl<S, T> TemplateBuilder<S, T> {
    /// The same builder in another type state.
    fn retype<S2, T2>(self, source: impl FnOnce(S) -> S2) -> TemplateBuilder<S2, T2> {
        TemplateBuilder {
            name: self.name,
            source: source(self.source),
            customizers: self.customizers,
            validation: self.validation,
            targets: self.targets,
            build_timeout: self.build_timeout,
            vm_profile: self.vm_profile,
            error_handling: self.error_handling,
            optimize: self.optimize,
            target_state: PhantomData,
        }
    }

    /// Sets the source image.
    pub fn source(self, source: SourceSpec) -> TemplateBuilder<WithSource, T> {
        self.retype(|_| WithSource(source))
    }

    /// Adds a customization step.
    pub fn customize(mut self, customizer: impl Customizer + 'static) -> Self {
        self.customizers.push(Arc::new(customizer));
        self
    }

    /// Adds a customization step written as a template entry.
    pub fn customize_spec(mut self, spec: &CustomizerSpec) -> Self {
        self.customizers.push(customize::for_spec(spec));
        self
    }

    /// Adds an inline `Shell` step.
    pub fn shell<I: IntoIterator<Item = L>, L: Into<String>>(self, lines: I) -> Self {
        let step = crate::template::model::ShellStep {
            name: None,
            script: crate::template::model::Script::Inline(
                lines.into_iter().map(Into::into).collect(),
            ),
            sha256_checksum: String::new(),
            sensitive: false,
        };
        self.customize(customize::ShellCustomizer::new(step))
    }

    /// Adds a validator.
    pub fn validate(mut self, validator: impl Customizer + 'static) -> Self {
        self.validation.validators.push(Arc::new(validator));
        self
    }

    /// Distribute even when validation fails.
    pub fn continue_distribute_on_failure(mut self, yes: bool) -> Self {
        self.validation.continue_distribute_on_failure = yes;
        self
    }

    /// Adds a target written as a template entry.
    pub fn distribute(mut self, spec: DistributorSpec) -> TemplateBuilder<S, WithTarget> {
        self.targets.push(Target::Spec(spec));
        self.retype(|source| source)
    }

    /// Adds a target given as a distributor.
    pub fn distribute_to(
        mut self,
        distributor: impl Distributor + 'static,
    ) -> TemplateBuilder<S, WithTarget> {
        self.targets.push(Target::Custom(Arc::new(distributor)));
        self.retype(|source| source)
    }

    /// Sets the deadline over all phases.
    pub fn build_timeout(mut self, timeout: Duration) -> Self {
        self.build_timeout = timeout;
        self
    }

    /// Runs the optimize phase.
    pub fn optimize(mut self, yes: bool) -> Self {
        self.optimize = yes;
        self
    }

    /// Sets the build VM's profile.
    pub fn vm_profile(mut self, profile: VmProfile) -> Self {
        self.vm_profile = profile;
        self
    }

    /// Sets what happens to a failed phase's VM.
    pub fn error_handling(mut self, handling: ErrorHandling) -> Self {
        self.error_handling = handling;
        self
    }
}

impl TemplateBuilder<WithSource, WithTarget> {
    /// The template.
    pub fn build(self) -> BuiltTemplate {
        BuiltTemplate {
            name: self.name,
            source: self.source.0,
            customizers: self.customizers,
            validation: self.validation,
            targets: self.targets,
            build_timeout: self.build_timeout,
            vm_profile: self.vm_profile,
            error_handling: self.error_handling,
            optimize: self.optimize,
        }
    }
}

/// A template made with [`TemplateBuilder`].
#[derive(Clone)]
pub struct BuiltTemplate {
    name: String,
    source: SourceSpec,
    customizers: Vec<Arc<dyn Customizer>>,
    validation: ValidationPlan,
    targets: Vec<Target>,
    build_timeout: Duration,
    vm_profile: VmProfile,
    error_handling: ErrorHandling,
    optimize: bool,
}

impl Template for BuiltTemplate {
    fn name(&self) -> &str {
        &self.name
    }
    fn source(&self) -> &SourceSpec {
        &self.source
    }
    fn customizers(&self) -> Vec<Arc<dyn Customizer>> {
        self.customizers.clone()
    }
    fn validation(&self) -> ValidationPlan {
        self.validation.clone()
    }
    fn targets(&self) -> Vec<Target> {
        self.targets.clone()
    }
    fn build_timeout(&self) -> Duration {
        self.build_timeout
    }
    fn vm_profile(&self) -> VmProfile {
        self.vm_profile.clone()
    }
    fn error_handling(&self) -> ErrorHandling {
        self.error_handling.clone()
    }
    fn optimize(&self) -> bool {
        self.optimize
    }
}
