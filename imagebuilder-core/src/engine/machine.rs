//! The run lifecycle as a pure transition function.
//!
//! | from (runState/runSubState) | event | to | action |
//! |---|---|---|---|
//! | Running/Queued | Start | Running/Building (Running/Validating with sourceValidationOnly) | Build (Validate) |
//! | Running/Building | PhaseSucceeded | Running/Customizing | Customize |
//! | Running/Customizing | PhaseSucceeded | Running/Optimizing, else Running/Validating, else Running/Distributing | Optimize / Validate / Distribute |
//! | Running/Optimizing | PhaseSucceeded | Running/Validating, else Running/Distributing | Validate / Distribute |
//! | Running/Validating | PhaseSucceeded | Running/Distributing (Succeeded/Validating with sourceValidationOnly) | Distribute (Finish) |
//! | Running/Validating | PhaseFailed | Running/Distributing with continueDistributeOnFailure, else Failed/Validating | Distribute / Finish (keep VM on `abort`) |
//! | Running/Customizing | PhaseFailed | Failed/Customizing | Finish (keep VM on `abort`) |
//! | Running/Building, Optimizing | PhaseFailed | Failed/same | Finish |
//! | Running/Distributing | Distributed | Succeeded; PartiallySucceeded when some failed; Failed when all failed or validation had failed | Finish |
//! | Running/Distributing | PhaseFailed (distribution itself broke) | Failed/Distributing | Finish |
//! | Running/Queued | CancelRequested | Canceled/Queued | Finish |
//! | Running/other | CancelRequested | Canceling/same | StopWork |
//! | Canceling/any | WorkStopped, PhaseSucceeded, PhaseFailed, Distributed, DeadlineExceeded | Canceled/same | Finish |
//! | Canceling/any | CancelRequested | Canceling/same | Nothing |
//! | Running/any | DeadlineExceeded | Failed/same | Finish |
//!
//! Every other pair is an [`InvalidTransition`]; terminal states accept no event.

use serde::Serialize;

use crate::run::{RunState, RunSubState};

/// The parts of a template that decide the path through the phases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFlags {
    /// `optimize` asks for work after capture.
    pub optimize: bool,
    /// `validate.inVMValidations` is not empty.
    pub validate: bool,
    /// `validate.sourceValidationOnly`: validate the source, build nothing.
    pub source_validation_only: bool,
    /// `validate.continueDistributeOnFailure`.
    pub continue_distribute_on_failure: bool,
    /// `errorHandling.onCustomizerError: abort`.
    pub keep_vm_on_customizer_error: bool,
    /// `errorHandling.onValidationError: abort`.
    pub keep_vm_on_validation_error: bool,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunMachine {
    /// AIB's runState.
    pub run_state: RunState,
    /// AIB's runSubState.
    pub run_sub_state: RunSubState,
    /// What the template asks for.
    pub flags: RunFlags,
    /// Validation failed and distribution continued anyway; the run ends Failed.
    pub validation_failed: bool,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunEvent {
    /// The run starts.
    Start,
    /// The current phase's work succeeded.
    PhaseSucceeded,
    /// The current phase's work failed.
    PhaseFailed,
    /// Distribution finished with this many targets published and failed.
    Distributed {
        /// Targets published.
        succeeded: usize,
        /// Targets that failed.
        failed: usize,
    },
    /// Someone asked to cancel.
    CancelRequested,
    /// `buildTimeoutInMinutes` passed.
    DeadlineExceeded,
    /// After a cancel, the phase's work has stopped.
    WorkStopped,
}

/// What the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunAction {
    /// Stage artifacts, resolve the source, provision the build VM.
    Build,
    /// Run the customizers, generalize, shut down and capture.
    Customize,
    /// Optimize the capture.
    Optimize,
    /// Boot a validation VM and run the validators.
    Validate,
    /// Publish the capture to every target.
    Distribute,
    /// Stop the current phase's work (a cancel).
    StopWork,
    /// Clean up and end; keep the failed phase's VM when asked to.
    Finish {
        /// `errorHandling: abort` applies: keep the VM for debugging.
        keep_vm: bool,
    },
    /// Nothing to do (a repeated cancel).
    Nothing,
}

/// An event that cannot happen in a state: a bug in the driver, reported rather than
/// panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event {event:?} is not valid in {run_state:?}/{run_sub_state:?}")]
pub struct InvalidTransition {
    /// The state.
    pub run_state: RunState,
    /// The sub-state.
    pub run_sub_state: RunSubState,
    /// The event.
    pub event: RunEvent,
}

impl RunMachine {
    /// A queued run.
    pub fn new(flags: RunFlags) -> Self {
        Self {
            run_state: RunState::Running,
            run_sub_state: RunSubState::Queued,
            flags,
            validation_failed: false,
        }
    }

    fn to(self, run_state: RunState, run_sub_state: RunSubState) -> Self {
        Self {
            run_state,
            run_sub_state,
            ..self
        }
    }

    fn end(self, run_state: RunState, keep_vm: bool) -> (Self, RunAction) {
        (
            self.to(run_state, self.run_sub_state),
            RunAction::Finish { keep_vm },
        )
    }

    /// The phase after customizing (and after optimizing, skipping it).
    fn after_capture(self, optimized: bool) -> (Self, RunAction) {
        use RunSubState::*;
        if self.flags.optimize && !optimized {
            (self.to(RunState::Running, Optimizing), RunAction::Optimize)
        } else if self.flags.validate {
            (self.to(RunState::Running, Validating), RunAction::Validate)
        } else {
            (
                self.to(RunState::Running, Distributing),
                RunAction::Distribute,
            )
        }
    }

    /// The next state and action after `event`.
    pub fn next(self, event: RunEvent) -> Result<(Self, RunAction), InvalidTransition> {
        use RunEvent::*;
        use RunSubState::*;
        let invalid = InvalidTransition {
            run_state: self.run_state,
            run_sub_state: self.run_sub_state,
            event,
        };
        let flags = self.flags;
        match self.run_state {
            RunState::Succeeded
            | RunState::PartiallySucceeded
            | RunState::Failed
            | RunState::Canceled => Err(invalid),
            RunState::Canceling => match event {
                CancelRequested => Ok((self, RunAction::Nothing)),
                Start => Err(invalid),
                WorkStopped
                | PhaseSucceeded
                | PhaseFailed
                | Distributed { .. }
                | DeadlineExceeded => Ok(self.end(RunState::Canceled, false)),
            },
            RunState::Running => match (self.run_sub_state, event) {
                (Queued, Start) if flags.source_validation_only => {
                    Ok((self.to(RunState::Running, Validating), RunAction::Validate))
                }
                (Queued, Start) => Ok((self.to(RunState::Running, Building), RunAction::Build)),
                (Queued, CancelRequested) => Ok(self.end(RunState::Canceled, false)),
                (_, CancelRequested) => Ok((
                    self.to(RunState::Canceling, self.run_sub_state),
                    RunAction::StopWork,
                )),
                (Queued, DeadlineExceeded) => Ok(self.end(RunState::Failed, false)),
                (_, DeadlineExceeded) => Ok(self.end(RunState::Failed, false)),

                (Building, PhaseSucceeded) => Ok((
                    self.to(RunState::Running, Customizing),
                    RunAction::Customize,
                )),
                (Customizing, PhaseSucceeded) => Ok(self.after_capture(false)),
                (Optimizing, PhaseSucceeded) => Ok(self.after_capture(true)),
                (Validating, PhaseSucceeded) if flags.source_validation_only => {
                    Ok(self.end(RunState::Succeeded, false))
                }
                (Validating, PhaseSucceeded) => Ok((
                    self.to(RunState::Running, Distributing),
                    RunAction::Distribute,
                )),

                (Building | Optimizing, PhaseFailed) => Ok(self.end(RunState::Failed, false)),
                (Customizing, PhaseFailed) => {
                    Ok(self.end(RunState::Failed, flags.keep_vm_on_customizer_error))
                }
                (Validating, PhaseFailed)
                    if flags.continue_distribute_on_failure && !flags.source_validation_only =>
                {
                    let machine = Self {
                        validation_failed: true,
                        ..self.to(RunState::Running, Distributing)
                    };
                    Ok((machine, RunAction::Distribute))
                }
                (Validating, PhaseFailed) => {
                    Ok(self.end(RunState::Failed, flags.keep_vm_on_validation_error))
                }

                (Distributing, Distributed { succeeded, failed }) => {
                    let state = if self.validation_failed || succeeded == 0 {
                        RunState::Failed
                    } else if failed == 0 {
                        RunState::Succeeded
                    } else {
                        RunState::PartiallySucceeded
                    };
                    Ok(self.end(
                        state,
                        self.validation_failed && flags.keep_vm_on_validation_error,
                    ))
                }

                // Distribution itself broke (a distributor panicked): nothing can be counted.
                (Distributing, PhaseFailed) => Ok(self.end(RunState::Failed, false)),

                (Queued, PhaseSucceeded | PhaseFailed | Distributed { .. } | WorkStopped)
                | (
                    Building | Customizing | Optimizing | Validating | Distributing,
                    Start | WorkStopped,
                )
                | (Building | Customizing | Optimizing | Validating, Distributed { .. })
                | (Distributing, PhaseSucceeded) => Err(invalid),
            },
        }
    }
}

#[cfg(test)]
#[path = "machine/tests.rs"]
mod tests;
