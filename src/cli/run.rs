//! Running one template and turning its report into output and an exit code, shared by
//! `build` and `template run`.

use std::sync::Arc;

use imagebuilder::core::engine::{BuildEvent, Engine, EventSink, RunOptions, RunReport};
use imagebuilder::core::plan::Template;
use imagebuilder::core::run::RunState;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use super::Outcome;

/// The exit code for a run's final state: 0 Succeeded, 3 PartiallySucceeded, 1 otherwise.
pub(crate) fn outcome(report: &RunReport) -> Outcome {
    match report.run_state {
        RunState::Succeeded => Outcome::Success,
        RunState::PartiallySucceeded => Outcome::Partial,
        RunState::Running | RunState::Canceling | RunState::Failed | RunState::Canceled => {
            Outcome::Invalid
        }
    }
}

/// Cancels `token` on the first Ctrl-C, so the run cleans up before the process exits.
pub(crate) fn cancel_on_ctrl_c(token: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("canceling: cleaning up the build (Ctrl-C again to abandon it)");
            token.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

/// Forwards events to the progress display and to `also`.
pub(crate) struct Tee<F> {
    pub(crate) progress: Arc<Progress>,
    pub(crate) also: F,
}

impl<F: Fn(&BuildEvent) + Send + Sync> EventSink for Tee<F> {
    fn emit(&self, event: BuildEvent) {
        (self.also)(&event);
        self.progress.emit(event);
    }
}

/// The final JSON object of `--json` output.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Final<'a> {
    template: &'a str,
    #[serde(flatten)]
    report: &'a RunReport,
    log: Option<String>,
}

/// Runs `template`, then prints its result (JSON last line with `--json`).
pub(crate) async fn run_and_report(
    engine: &Engine,
    template: &dyn Template,
    options: RunOptions,
    progress: &Progress,
    json: bool,
) -> RunReport {
    let log = options.log_path.as_ref().map(|p| p.display().to_string());
    let report = engine.run(template, options).await;
    progress.finish();
    if json {
        let last = Final {
            template: template.name(),
            report: &report,
            log,
        };
        out!(
            "{}",
            serde_json::to_string(&last).expect("reports serialize")
        );
    } else {
        eprintln!(
            "{}: {:?} ({:?}) {}",
            template.name(),
            report.run_state,
            report.run_sub_state,
            report.message
        );
        for output in &report.outputs {
            // Tab-separated columns; "-" where the target computed no digest.
            let sha256 = if output.sha256.is_empty() {
                "-"
            } else {
                &output.sha256
            };
            out!(
                "{}\t{}\t{sha256}",
                output.run_output_name,
                output.artifact_id,
            );
        }
        if let Some(log) = log {
            eprintln!("log: {log}");
        }
    }
    report
}
