//! The work of each phase: build, customize (with generalize and capture), optimize,
//! validate, distribute.

use std::sync::Arc;
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};

use super::driver::{phase_vm, Engine, RunOptions};
use super::log::RunLog;
use super::resources::{Cleanup, Resources};
use super::{BuildEvent, RunAction, TargetFailure};
use crate::artifacts;
use crate::customize::{Customizer, Generalize, StagedArtifacts, StepContext};
use crate::distribute::{CapturedImage, DistributeContext, Distributor};
use crate::host::{BuildVm, Capabilities, ProvisionOptions, VmPurpose};
use crate::plan::{Target, Template};
use crate::run::{RunOutput, RunSubState};
use crate::source::{BaseDisk, SourceCache, Staging};
use crate::template::model::{DistributorSpec, HyperVGeneration, OnError, OsType};

/// How a phase ended, as the driver turns it into a [`super::RunEvent`].
pub(super) enum PhaseOutcome {
    Succeeded,
    Failed(String),
    Distributed { succeeded: usize, failed: usize },
}

/// One run's state between phases.
pub(super) struct Run<'a> {
    engine: &'a Engine,
    template: &'a dyn Template,
    options: RunOptions,
    log: &'a RunLog,
    resources: Resources,
    base_disk: Option<BaseDisk>,
    artifacts: StagedArtifacts,
    capture: Option<CapturedImage>,
    outputs: Vec<RunOutput>,
    failures: Vec<TargetFailure>,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        template: &'a dyn Template,
        options: RunOptions,
        log: &'a RunLog,
    ) -> Self {
        let resources = Resources::new(options.work_dir.clone());
        Self {
            engine,
            template,
            options,
            log,
            resources,
            base_disk: None,
            artifacts: StagedArtifacts::default(),
            capture: None,
            outputs: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub(super) async fn perform(&mut self, action: RunAction) -> PhaseOutcome {
        let result = match action {
            RunAction::Build => self.build().await,
            RunAction::Customize => self.customize().await,
            RunAction::Optimize => self.optimize().await,
            RunAction::Validate => self.validate().await,
            RunAction::Distribute => return self.distribute().await,
            RunAction::StopWork | RunAction::Finish { .. } | RunAction::Nothing => Ok(()),
        };
        match result {
            Ok(()) => PhaseOutcome::Succeeded,
            Err(message) => PhaseOutcome::Failed(message),
        }
    }

    /// Resolves the source, checks the host can build it, stages and verifies every artifact,
    /// then provisions the build VM. Nothing starts before the checksums are verified.
    async fn build(&mut self) -> Result<(), String> {
        let base = self.resolve_source().await?;
        // Validators' files too: every checksum is verified before any VM starts.
        let validators = self.template.validation().validators;
        self.stage_artifacts(self.template.customizers().iter().chain(validators.iter()))
            .await?;
        let vm = self.provision(VmPurpose::Build, base).await?;
        self.resources.build_vm = Some(vm);
        Ok(())
    }

    async fn resolve_source(&mut self) -> Result<BaseDisk, String> {
        if let Some(disk) = &self.base_disk {
            return Ok(disk.clone());
        }
        let disk = self
            .engine
            .source
            .resolve(self.template.source())
            .await
            .map_err(|e| format!("failed to resolve the source: {}", crate::error_chain(&e)))?;
        check_capabilities(
            &self.engine.host.capabilities(),
            self.engine.host.name(),
            &disk,
            self.template,
        )?;
        self.log.emit(BuildEvent::SourceResolved {
            location: artifacts::redact_uri(&disk.location),
            exact_version: disk.exact_version.clone(),
        });
        self.log.note(&format!(
            "source resolved to {} ({}{})",
            artifacts::redact_uri(&disk.location),
            disk.format,
            disk.exact_version
                .as_ref()
                .map(|v| format!(", version {v}"))
                .unwrap_or_default()
        ));
        let disk = self.stage_source(&disk).await?;
        self.base_disk = Some(disk.clone());
        Ok(disk)
    }

    /// The source as a verified local file, before any VM boots: hosts boot local files
    /// only, so the engine downloads remote sources once for all of them.
    async fn stage_source(&self, disk: &BaseDisk) -> Result<BaseDisk, String> {
        let cache = self
            .engine
            .source_cache
            .clone()
            .unwrap_or_else(|| SourceCache::new(self.options.work_dir.join("source-cache")));
        let staged = cache.stage(disk).await.map_err(|e| {
            let message = crate::error_chain(&e);
            // A store's error may quote the request URL with the token of the source's.
            let message = match disk.location.split_once('?') {
                Some((_, query)) if !query.is_empty() => message.replace(query, "<redacted>"),
                _ => message,
            };
            format!("failed to stage the source: {message}")
        })?;
        let how = match staged.staging {
            Staging::Unchecked => "used as it is (no sha256 given)",
            Staging::Hashed => "sha256 verified",
            Staging::Remembered => "sha256 verified earlier, file unchanged",
            Staging::Downloaded => "downloaded, sha256 verified",
            Staging::Cached => "found in the source cache, sha256 verified",
        };
        self.log.note(&format!(
            "source {}: {how}{}",
            artifacts::redact_uri(&disk.location),
            staged
                .sha256
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ));
        Ok(staged.disk)
    }

    async fn stage_artifacts<'c>(
        &mut self,
        steps: impl Iterator<Item = &'c Arc<dyn Customizer>>,
    ) -> Result<(), String> {
        for artifact in steps.flat_map(|s| s.artifacts()) {
            if self.artifacts.get(&artifact.uri).is_some() {
                continue;
            }
            let fetched = artifacts::fetch(
                &artifact.uri,
                artifact.sha256.as_deref(),
                &self.options.artifacts_dir,
            )
            .await
            .map_err(|e| crate::error_chain(&e))?;
            self.log.emit(BuildEvent::ArtifactStaged {
                uri: artifacts::redact_uri(&artifact.uri),
                sha256: fetched.sha256.clone(),
                size: fetched.size,
            });
            self.artifacts.insert(artifact.uri, fetched.path);
        }
        Ok(())
    }

    async fn provision(
        &mut self,
        purpose: VmPurpose,
        base_disk: BaseDisk,
    ) -> Result<Box<dyn BuildVm>, String> {
        let vm_id = format!(
            "{}-{}",
            self.options.run_id,
            match purpose {
                VmPurpose::Build => "build",
                VmPurpose::Validation => "validate",
            }
        );
        let work_dir = self.options.work_dir.join(&vm_id);
        tokio::fs::create_dir_all(&work_dir)
            .await
            .map_err(|e| format!("failed to create {}: {e}", work_dir.display()))?;
        let console = self.log.console();
        let options = ProvisionOptions {
            vm_id: vm_id.clone(),
            purpose,
            base_disk,
            vm_profile: self.template.vm_profile(),
            work_dir,
            console,
        };
        let vm = self.engine.host.provision(options).await.map_err(|e| {
            format!(
                "failed to provision the {purpose:?} VM: {}",
                crate::error_chain(&e)
            )
        })?;
        self.log.emit(BuildEvent::VmProvisioned { purpose, vm_id });
        Ok(vm)
    }

    /// Runs `steps` in `vm`, emitting start and end events; stops at the first failure.
    async fn run_steps(
        &self,
        vm: &dyn BuildVm,
        phase: RunSubState,
        steps: &[Arc<dyn Customizer>],
    ) -> Result<(), String> {
        let os_type = self.base_disk.as_ref().map_or(OsType::Linux, |d| d.os_type);
        let scratch = self.options.work_dir.join("scratch");
        tokio::fs::create_dir_all(&scratch)
            .await
            .map_err(|e| format!("failed to create {}: {e}", scratch.display()))?;
        for (index, step) in steps.iter().enumerate() {
            let info = step.info();
            self.log.emit(BuildEvent::StepStarted {
                phase,
                index,
                step: info.clone(),
            });
            self.log.note(&format!(
                "starting {} {}",
                info.kind,
                info.name.as_deref().unwrap_or("")
            ));
            let started = Instant::now();
            let cx = StepContext {
                os_type,
                index,
                artifacts: &self.artifacts,
                scratch_dir: &scratch,
                output: self.log,
            };
            let result = step
                .run(vm.guest(), &cx)
                .await
                .map_err(|e| crate::error_chain(&e));
            self.log.emit(BuildEvent::StepFinished {
                phase,
                index,
                step: info.clone(),
                duration: started.elapsed(),
                error: result.as_ref().err().cloned(),
            });
            if let Err(error) = result {
                self.log.note(&format!("failed: {error}"));
                return Err(format!("{phase:?} failed: {error}"));
            }
        }
        Ok(())
    }

    /// Customizers, then generalize, shutdown and capture; the build VM is destroyed as soon
    /// as its disk is captured.
    async fn customize(&mut self) -> Result<(), String> {
        let mut steps = self.template.customizers();
        steps.push(Arc::new(Generalize));
        let vm = self
            .resources
            .build_vm
            .as_deref()
            .ok_or("internal error: no build VM")?;
        self.run_steps(vm, RunSubState::Customizing, &steps).await?;

        let vm = self
            .resources
            .build_vm
            .as_mut()
            .ok_or("internal error: no build VM")?;
        vm.shutdown().await.map_err(|e| crate::error_chain(&e))?;
        let base = self.base_disk.clone().ok_or("internal error: no source")?;
        let destination = self
            .options
            .work_dir
            .join(format!("capture.{}", base.format));
        let disk = vm
            .capture(&destination)
            .await
            .map_err(|e| crate::error_chain(&e))?;
        self.destroy_now(VmPurpose::Build).await;

        let (sha256, size) = artifacts::sha256_file(&disk.path)
            .await
            .map_err(|e| format!("failed to read the capture: {e}"))?;
        self.log.emit(BuildEvent::Captured {
            size,
            sha256: sha256.clone(),
        });
        self.capture = Some(CapturedImage {
            path: disk.path,
            format: disk.format,
            virtual_size: disk.virtual_size,
            size,
            sha256,
            os_type: base.os_type,
            hyper_v_generation: base.hyper_v_generation,
            security_type: base.security_type,
            source_version: base.exact_version,
        });
        Ok(())
    }

    /// Local images have no boot pre-warming to do; the phase is kept so runs report the
    /// same states as AIB's.
    async fn optimize(&mut self) -> Result<(), String> {
        self.log
            .note("optimize: nothing to do for a locally built image");
        Ok(())
    }

    /// Boots a VM from the capture (or the source with sourceValidationOnly) and runs the
    /// validators. A failed validation VM stays in place for `errorHandling: abort`.
    async fn validate(&mut self) -> Result<(), String> {
        let plan = self.template.validation();
        let base = match &self.capture {
            Some(capture) => {
                let source = self.base_disk.clone().ok_or("internal error: no source")?;
                BaseDisk {
                    location: capture.path.display().to_string(),
                    format: capture.format,
                    virtual_size: capture.virtual_size,
                    sha256: Some(capture.sha256.clone()),
                    ..source
                }
            }
            None => self.resolve_source().await?,
        };
        self.stage_artifacts(plan.validators.iter()).await?;
        let vm = self.provision(VmPurpose::Validation, base).await?;
        self.resources.validation_vm = Some(vm);
        let vm = self
            .resources
            .validation_vm
            .as_deref()
            .ok_or("internal error: no validation VM")?;
        self.run_steps(vm, RunSubState::Validating, &plan.validators)
            .await?;
        self.destroy_now(VmPurpose::Validation).await;
        Ok(())
    }

    /// Destroys a VM that has done its work. A failure is logged, not fatal: as with AIB,
    /// deleting a build resource is cleanup, and cleanup errors do not change the result.
    async fn destroy_now(&mut self, purpose: VmPurpose) {
        let vm = match purpose {
            VmPurpose::Build => self.resources.build_vm.take(),
            VmPurpose::Validation => self.resources.validation_vm.take(),
        };
        if let Err(e) = Resources::destroy(vm).await {
            self.log.note(&e);
        }
    }

    /// Publishes the capture to every target at once; each reads the same file.
    async fn distribute(&mut self) -> PhaseOutcome {
        let Some(image) = self.capture.clone() else {
            return PhaseOutcome::Failed("internal error: nothing was captured".into());
        };
        let log = self.log;
        let progress = move |name: &str, done: u64, total: u64| {
            log.emit(BuildEvent::BytesDistributed {
                run_output_name: name.to_owned(),
                done,
                total,
            });
        };
        let cx = DistributeContext {
            template_name: self.template.name(),
            run_id: &self.options.run_id,
            staging_dir: &self.options.staging_dir,
            progress: &progress,
        };
        let targets = self.template.targets();
        // Made together, so they can share one read of the capture.
        let specs: Vec<&DistributorSpec> = targets
            .iter()
            .filter_map(|target| match target {
                Target::Spec(spec) => Some(spec),
                Target::Custom(_) => None,
            })
            .collect();
        let mut made = self.engine.distributors.distributors(&specs).into_iter();
        let jobs = targets.iter().map(|target| {
            let distributor: Result<Arc<dyn Distributor>, String> = match target {
                Target::Spec(_) => match made.next() {
                    Some(result) => result.map_err(|e| crate::error_chain(&e)),
                    None => Err(
                        "internal error: the distributor factory made too few distributors".into(),
                    ),
                },
                Target::Custom(d) => Ok(d.clone()),
            };
            let (image, cx) = (&image, &cx);
            async move {
                let name = target.run_output_name().to_owned();
                let result = match distributor {
                    Ok(d) => d
                        .distribute(image, cx)
                        .await
                        .map_err(|e| crate::error_chain(&e)),
                    Err(e) => Err(e),
                };
                (name, result)
            }
        });
        // Each result is recorded as it arrives: when a cancel or the deadline drops this
        // future, the targets already published stay in the run's outputs.
        let order = |name: &str| {
            targets
                .iter()
                .position(|t| t.run_output_name() == name)
                .unwrap_or(usize::MAX)
        };
        let mut jobs: FuturesUnordered<_> = jobs.collect();
        while let Some((name, result)) = jobs.next().await {
            match result {
                Ok(output) => {
                    log.emit(BuildEvent::TargetFinished {
                        run_output_name: name,
                        artifact_id: Some(output.artifact_id.clone()),
                        error: None,
                    });
                    self.outputs.push(output);
                    // In the template's order, whatever order they finish in.
                    self.outputs.sort_by_key(|o| order(&o.run_output_name));
                }
                Err(message) => {
                    log.note(&format!("target {name} failed: {message}"));
                    log.emit(BuildEvent::TargetFinished {
                        run_output_name: name.clone(),
                        artifact_id: None,
                        error: Some(message.clone()),
                    });
                    self.failures.push(TargetFailure {
                        run_output_name: name,
                        message,
                    });
                    self.failures.sort_by_key(|f| order(&f.run_output_name));
                }
            }
        }
        PhaseOutcome::Distributed {
            succeeded: self.outputs.len(),
            failed: self.failures.len(),
        }
    }

    /// Destroys everything transient, keeping the failed phase's VM when asked to.
    pub(super) async fn cleanup(&mut self, keep_vm: bool, sub_state: RunSubState) -> Cleanup {
        let keep = match (keep_vm, phase_vm(sub_state)) {
            (true, Some(VmPurpose::Build)) => self.resources.build_vm.take(),
            (true, Some(VmPurpose::Validation)) => self.resources.validation_vm.take(),
            _ => None,
        };
        self.resources.cleanup(keep).await
    }

    pub(super) fn into_results(
        self,
    ) -> (String, Vec<RunOutput>, Vec<TargetFailure>, Option<String>) {
        let exact_version = self
            .base_disk
            .as_ref()
            .and_then(|d| d.exact_version.clone());
        (
            self.options.run_id.clone(),
            self.outputs,
            self.failures,
            exact_version,
        )
    }
}

/// Refuses, before anything starts, what the host cannot do.
fn check_capabilities(
    caps: &Capabilities,
    host: &str,
    disk: &BaseDisk,
    template: &dyn Template,
) -> Result<(), String> {
    let refuse = |what: &str| Err(format!("the {host} host cannot {what}"));
    match disk.hyper_v_generation {
        HyperVGeneration::V1 if !caps.bios => return refuse("boot Gen1 (BIOS) images"),
        HyperVGeneration::V2 if !caps.uefi => return refuse("boot Gen2 (UEFI) images"),
        _ => {}
    }
    if disk.os_type == OsType::Windows && !caps.windows {
        return refuse("run Windows guests");
    }
    if !caps.base_disk_formats.contains(&disk.format) {
        return refuse(&format!("boot {} disks", disk.format));
    }
    let handling = template.error_handling();
    let aborts = handling.on_customizer_error == OnError::Abort
        || handling.on_validation_error == OnError::Abort;
    if aborts && !caps.keep_on_failure {
        return refuse("keep a failed VM (errorHandling: abort)");
    }
    let restarts = template.customizers().iter().any(|c| c.restarts_guest());
    if restarts && !caps.restart {
        return refuse("restart a guest");
    }
    Ok(())
}
