//! The async driver: performs what the [`RunMachine`] decides, with one deadline over all
//! phases, cancellation at any moment, panics in steps caught, and cleanup on every path.

use std::path::PathBuf;
use std::sync::Arc;

use futures::FutureExt;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::admission::{Admission, EngineLimits, ASSUMED_VM_MEMORY_MIB};
use super::log::RunLog;
use super::phases::{PhaseOutcome, Run};
use super::scrub::Scrubber;
use super::{
    BuildEvent, EventSink, NoEvents, RunAction, RunEvent, RunFlags, RunMachine, RunReport,
};
use crate::distribute::DistributorFactory;
use crate::host::BuildHost;
use crate::plan::Template;
use crate::run::RunSubState;
use crate::source::{Source, SourceCache};
use crate::template::model::OnError;

/// Runs templates on one build host, resolving sources and making distributors with the
/// given backends.
#[derive(Clone)]
pub struct Engine {
    pub(super) host: Arc<dyn BuildHost>,
    pub(super) source: Arc<dyn Source>,
    pub(super) distributors: Arc<dyn DistributorFactory>,
    pub(super) source_cache: Option<SourceCache>,
    admission: Arc<Admission>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("host", &self.host.name())
            .finish_non_exhaustive()
    }
}

/// Where a run keeps its files and whom it tells.
pub struct RunOptions {
    /// Id of the run; names its VMs.
    pub run_id: String,
    /// Scratch directory (overlays, capture); removed at the end unless a VM is kept.
    pub work_dir: PathBuf,
    /// Where artifacts are staged; kept across runs by the template store.
    pub artifacts_dir: PathBuf,
    /// The template's staging area, for distributors that write there.
    pub staging_dir: PathBuf,
    /// `customization.log`; none to log only through events and tracing.
    pub log_path: Option<PathBuf>,
    /// Receives progress.
    pub events: Arc<dyn EventSink>,
    /// Cancels the run when triggered.
    pub cancel: CancellationToken,
}

impl RunOptions {
    /// Options keeping everything under `dir`, without events: scratch files in `dir/work`
    /// (removed at the end), artifacts, staging (where VHD targets without a uri go) and
    /// `customization.log` beside it, kept.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self {
            run_id: new_run_id(),
            artifacts_dir: dir.join("artifacts"),
            staging_dir: dir.join("staging"),
            log_path: Some(dir.join("customization.log")),
            work_dir: dir.join("work"),
            events: Arc::new(NoEvents),
            cancel: CancellationToken::new(),
        }
    }
}

/// How long cleanup (destroying VMs, removing files) may take before the run reports and
/// leaves the rest to the background.
const CLEANUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// A sortable, unique run id: UTC time to the microsecond plus a per-process counter.
pub fn new_run_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let now = OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}{:06}Z-{:x}-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl Engine {
    /// An engine on `host`, resolving sources with `source` and publishing with
    /// `distributors`.
    pub fn new(
        host: Arc<dyn BuildHost>,
        source: Arc<dyn Source>,
        distributors: Arc<dyn DistributorFactory>,
    ) -> Self {
        Self {
            host,
            source,
            distributors,
            source_cache: None,
            admission: Arc::new(Admission::new(EngineLimits::default())),
        }
    }

    /// The same engine keeping verified sources in `cache` across runs: a remote source is
    /// downloaded once, a local one hashed once (until it changes). Without one, each run
    /// downloads remote sources into its work directory and hashes local ones again.
    pub fn with_source_cache(mut self, cache: SourceCache) -> Self {
        self.source_cache = Some(cache);
        self
    }

    /// The same engine admitting runs within `limits`: a run waits in `Running/Queued`
    /// (cancellable, and within its build timeout) until a VM slot and its VMs' memory are
    /// free. Clones of the returned engine share the limits.
    pub fn with_limits(mut self, limits: EngineLimits) -> Self {
        self.admission = Arc::new(Admission::new(limits));
        self
    }

    /// Runs `template` to the end and reports how it ended. Never panics because of a step;
    /// every VM and temporary file is gone afterwards, except a VM kept by
    /// `errorHandling: abort` (reported in [`RunReport::kept_vm`]).
    pub async fn run(&self, template: &dyn Template, options: RunOptions) -> RunReport {
        let span = tracing::info_span!("run", template = template.name(), run_id = %options.run_id, host = self.host.name());
        self.run_inner(template, options).instrument(span).await
    }

    async fn run_inner(&self, template: &dyn Template, options: RunOptions) -> RunReport {
        let start_time = OffsetDateTime::now_utc();
        let deadline = tokio::time::Instant::now() + template.build_timeout();
        let events = options.events.clone();
        let scrub = Scrubber::new(template.secrets());
        let log = match RunLog::open(options.log_path.as_deref(), events.clone(), scrub.clone()) {
            Ok(log) => log,
            Err(e) => {
                tracing::warn!("cannot open the run log: {e}");
                RunLog::open(None, events.clone(), scrub)
                    .expect("a log without a file always opens")
            }
        };
        let flags = flags_of(template);
        let cancel = options.cancel.clone();
        let mut run = Run::new(self, template, options, &log);
        let mut machine = RunMachine::new(flags);
        let mut message = String::new();
        let memory_mib = self
            .host
            .vm_memory_mib(&template.vm_profile())
            .unwrap_or(ASSUMED_VM_MEMORY_MIB);
        if self.admission.would_wait(memory_mib) {
            log.emit(BuildEvent::StateChanged {
                run_state: machine.run_state,
                run_sub_state: machine.run_sub_state,
            });
            log.note("queued: waiting for a VM slot and memory within the engine's limits");
        }
        // Held until the run's cleanup is done.
        let mut _admitted = None;
        let mut event = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                message = "the run was canceled while queued".into();
                RunEvent::CancelRequested
            }
            _ = tokio::time::sleep_until(deadline) => {
                message = format!(
                    "the build did not start within buildTimeoutInMinutes ({} minutes): it stayed queued",
                    template.build_timeout().as_secs() / 60
                );
                RunEvent::DeadlineExceeded
            }
            admitted = self.admission.admit(memory_mib) => {
                _admitted = Some(admitted);
                RunEvent::Start
            }
        };

        let keep_vm = loop {
            let (next, action) = match machine.next(event) {
                Ok(step) => step,
                Err(invalid) => {
                    // A driver bug: end the run as failed rather than hang or panic, keeping
                    // the first error.
                    tracing::error!("internal error: {invalid}");
                    if message.is_empty() {
                        message = format!("internal error: {invalid}");
                    }
                    machine.run_state = crate::run::RunState::Failed;
                    break false;
                }
            };
            if (next.run_state, next.run_sub_state) != (machine.run_state, machine.run_sub_state) {
                log.emit(BuildEvent::StateChanged {
                    run_state: next.run_state,
                    run_sub_state: next.run_sub_state,
                });
                log.note(&format!("{:?}/{:?}", next.run_state, next.run_sub_state));
            }
            machine = next;
            event = match action {
                RunAction::Finish { keep_vm } => break keep_vm,
                RunAction::Nothing => RunEvent::WorkStopped,
                // The phase's future was dropped when the cancel arrived: its work has stopped.
                RunAction::StopWork => RunEvent::WorkStopped,
                phase => {
                    let span = tracing::info_span!("phase", phase = ?machine.run_sub_state);
                    let work = std::panic::AssertUnwindSafe(run.perform(phase).instrument(span))
                        .catch_unwind();
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => {
                            message = "the run was canceled".into();
                            RunEvent::CancelRequested
                        }
                        _ = tokio::time::sleep_until(deadline) => {
                            message = format!(
                                "the build did not finish within buildTimeoutInMinutes ({} minutes) during {:?}",
                                template.build_timeout().as_secs() / 60,
                                machine.run_sub_state
                            );
                            RunEvent::DeadlineExceeded
                        }
                        outcome = work => match outcome {
                            Ok(PhaseOutcome::Succeeded) => RunEvent::PhaseSucceeded,
                            Ok(PhaseOutcome::Distributed { succeeded, failed }) => RunEvent::Distributed { succeeded, failed },
                            Ok(PhaseOutcome::Failed(error)) => {
                                if message.is_empty() {
                                    message = error;
                                }
                                RunEvent::PhaseFailed
                            }
                            Err(panic) => {
                                message = format!("{:?} panicked: {}", machine.run_sub_state, panic_text(&panic));
                                RunEvent::PhaseFailed
                            }
                        },
                    }
                }
            };
        };

        // A hung destroy must not hold the run forever; whatever is left is destroyed in the
        // background when `run` is dropped.
        let cleanup = match tokio::time::timeout(CLEANUP_TIMEOUT, run.cleanup(keep_vm, machine.run_sub_state)).await {
            Ok(cleanup) => cleanup,
            Err(_) => super::resources::Cleanup {
                kept: None,
                errors: vec![format!("cleanup did not finish within {CLEANUP_TIMEOUT:?}; continuing it in the background")],
            },
        };
        for error in &cleanup.errors {
            log.note(error);
        }
        if let Some(access) = &cleanup.kept {
            log.emit(BuildEvent::VmKept {
                access: access.clone(),
            });
            log.note(&format!(
                "kept the VM for debugging: {} (remove with: {})",
                access.how, access.cleanup
            ));
        }
        let (run_id, outputs, mut failures, exact_version) = run.into_results();
        for failure in &mut failures {
            failure.message = log.scrubbed(&failure.message);
        }
        if message.is_empty() && !failures.is_empty() {
            message = format!(
                "{} of {} targets failed",
                failures.len(),
                failures.len() + outputs.len()
            );
        }
        log.note(&format!(
            "run ended {:?}/{:?}: {message}",
            machine.run_state, machine.run_sub_state
        ));
        log.flush();
        RunReport {
            run_id,
            run_state: machine.run_state,
            run_sub_state: machine.run_sub_state,
            message: log.scrubbed(&message),
            outputs,
            failures,
            exact_version,
            kept_vm: cleanup.kept,
            start_time,
            end_time: OffsetDateTime::now_utc(),
        }
    }
}

fn flags_of(template: &dyn Template) -> RunFlags {
    let validation = template.validation();
    let handling = template.error_handling();
    RunFlags {
        optimize: template.optimize(),
        validate: !validation.validators.is_empty() || validation.source_validation_only,
        source_validation_only: validation.source_validation_only,
        continue_distribute_on_failure: validation.continue_distribute_on_failure,
        keep_vm_on_customizer_error: handling.on_customizer_error == OnError::Abort,
        keep_vm_on_validation_error: handling.on_validation_error == OnError::Abort,
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Which VM a failed phase keeps under `errorHandling: abort`.
pub(super) fn phase_vm(sub_state: RunSubState) -> Option<crate::host::VmPurpose> {
    match sub_state {
        RunSubState::Customizing => Some(crate::host::VmPurpose::Build),
        RunSubState::Validating | RunSubState::Distributing => {
            Some(crate::host::VmPurpose::Validation)
        }
        RunSubState::Queued | RunSubState::Building | RunSubState::Optimizing => None,
    }
}
