//! Showing a run's events: progress bars on a terminal, JSON lines with `--json`, plain
//! lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use imagebuilder::core::engine::{BuildEvent, EventSink};
use indicatif::{ProgressBar, ProgressStyle};

/// Renders events as they come.
pub(crate) enum Progress {
    /// One JSON object per line on stdout.
    Json,
    /// A spinner with the phase and step; guest output printed above it.
    Terminal(Mutex<ProgressBar>),
    /// Plain lines on stderr.
    Plain,
}

impl Progress {
    pub(crate) fn new(json: bool) -> Self {
        if json {
            Self::Json
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Self::Terminal(Mutex::new(bar))
        } else {
            Self::Plain
        }
    }

    fn line(&self, text: &str) {
        match self {
            Self::Terminal(bar) => bar.lock().unwrap_or_else(|e| e.into_inner()).println(text),
            Self::Plain => eprintln!("{text}"),
            Self::Json => {}
        }
    }

    fn status(&self, text: String) {
        match self {
            Self::Terminal(bar) => bar
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set_message(text),
            Self::Plain => eprintln!("{text}"),
            Self::Json => {}
        }
    }

    pub(crate) fn finish(&self) {
        if let Self::Terminal(bar) = self {
            bar.lock()
                .unwrap_or_else(|e| e.into_inner())
                .finish_and_clear();
        }
    }
}

impl EventSink for Progress {
    fn emit(&self, event: BuildEvent) {
        if let Self::Json = self {
            out!(
                "{}",
                serde_json::to_string(&event).expect("events serialize")
            );
            return;
        }
        match event {
            BuildEvent::StateChanged {
                run_state,
                run_sub_state,
            } => self.status(format!("{run_state:?}/{run_sub_state:?}")),
            BuildEvent::StepStarted { phase, step, .. } => self.status(format!(
                "{phase:?}: {} {}",
                step.kind,
                step.name.unwrap_or_default()
            )),
            BuildEvent::StepFinished {
                step,
                duration,
                error,
                ..
            } => {
                let name = step.name.unwrap_or_default();
                match error {
                    None => self.line(&format!("✓ {} {name} ({:.1?})", step.kind, duration)),
                    Some(e) => self.line(&format!("✗ {} {name}: {e}", step.kind)),
                }
            }
            BuildEvent::GuestOutput { line, .. } => self.line(&format!("  | {line}")),
            BuildEvent::ArtifactStaged { uri, size, .. } => {
                self.line(&format!("staged {uri} ({size} bytes)"))
            }
            BuildEvent::SourceResolved {
                location,
                exact_version,
            } => self.line(&format!(
                "source {location}{}",
                exact_version
                    .map(|v| format!(" version {v}"))
                    .unwrap_or_default()
            )),
            BuildEvent::BytesDistributed {
                run_output_name,
                done,
                total,
            } => self.status(format!(
                "Distributing {run_output_name}: {done}/{total} bytes"
            )),
            BuildEvent::TargetFinished {
                run_output_name,
                artifact_id,
                error,
            } => match (artifact_id, error) {
                (Some(id), _) => self.line(&format!("published {run_output_name}: {id}")),
                (None, Some(e)) => self.line(&format!("target {run_output_name} failed: {e}")),
                (None, None) => {}
            },
            BuildEvent::VmKept { access } => self.line(&format!(
                "kept the VM: {} (remove with: {})",
                access.how, access.cleanup
            )),
            _ => {}
        }
    }
}
