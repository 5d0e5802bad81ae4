//! `imagebuilder template ...`: AIB's template resource lifecycle over the state directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use imagebuilder::core::engine::{BuildEvent, RunOptions};
use imagebuilder::core::run::RunState;
use imagebuilder::core::store::{StoreError, TemplateRecord, TemplateStore};
use imagebuilder::template::parse_document;
use serde_json::json;

use super::parameters::TemplateInputArgs;
use super::progress::Progress;
use super::run::{cancel_on_ctrl_c, outcome, run_and_report, Tee};
use super::setup::{EngineArgs, StateArgs};
use super::{Outcome, UsageError};

/// Arguments of `imagebuilder template`.
#[derive(Debug, Args)]
pub(crate) struct TemplateArgs {
    #[command(subcommand)]
    command: TemplateCommand,

    #[command(flatten)]
    state: StateArgs,
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// Store a template under NAME; an existing NAME is refused (templates are immutable).
    Create {
        /// Template name.
        name: String,
        /// Template file.
        template: PathBuf,
        #[command(flatten)]
        input: TemplateInputArgs,
    },
    /// List stored templates with their last run's state.
    List,
    /// Show a template, its provisioning state and last run status as JSON.
    Show {
        /// Template name.
        name: String,
    },
    /// Patch tags, identity, distribute or vmProfile (AIB's PATCH body).
    Patch {
        /// Template name.
        name: String,
        /// JSON file with the patch.
        file: PathBuf,
    },
    /// Run a stored template.
    Run {
        /// Template name.
        name: String,
        #[command(flatten)]
        engine: EngineArgs,
        /// One JSON event per line, then a JSON object with runState and the run outputs.
        #[arg(long)]
        json: bool,
    },
    /// Ask a running build of the template (in any process) to cancel.
    Cancel {
        /// Template name.
        name: String,
    },
    /// Delete a template and its staging area; refused while it runs.
    Delete {
        /// Template name.
        name: String,
    },
    /// Print the run outputs of a template as JSON.
    Outputs {
        /// Template name.
        name: String,
    },
}

fn store_error(e: StoreError) -> UsageError {
    UsageError(imagebuilder::core::error_chain(&e))
}

fn print_json(value: &impl serde::Serialize) {
    out!(
        "{}",
        serde_json::to_string_pretty(value).expect("values serialize")
    );
}

fn record_json(record: &TemplateRecord) -> serde_json::Value {
    json!({
        "name": record.name,
        "provisioningState": record.provisioning_state,
        "provisioningError": record.provisioning_error,
        "lastRunStatus": record.last_run_status,
        "template": record.redacted_template(),
        "stagingDir": record.staging_dir,
    })
}

pub(crate) async fn run(args: &TemplateArgs) -> Result<Outcome, UsageError> {
    let store = args.state.store()?;
    super::setup::reconcile_vms(&args.state.dir()).await;
    match &args.command {
        TemplateCommand::Create {
            name,
            template,
            input,
        } => {
            let options = input.parse_options()?;
            let text = std::fs::read_to_string(template).map_err(|e| {
                UsageError(format!("cannot read template {}: {e}", template.display()))
            })?;
            let doc = match parse_document(&text, &options) {
                Ok(doc) => doc,
                Err(diags) => {
                    for d in diags.errors() {
                        out!("{d}");
                    }
                    return Ok(Outcome::Invalid);
                }
            };
            let [template] = doc.templates.as_slice() else {
                return Err(UsageError(format!(
                    "{} holds {} templates; create takes one",
                    template.display(),
                    doc.templates.len()
                )));
            };
            for warning in doc.warnings.warnings() {
                eprintln!("{warning}");
            }
            let record = store.create(name, template).map_err(store_error)?;
            eprintln!("created {} ({:?})", record.name, record.provisioning_state);
            Ok(Outcome::Success)
        }
        TemplateCommand::List => {
            for record in store.list().map_err(store_error)? {
                let last = record
                    .last_run_status
                    .map(|s| format!("{:?}/{:?}", s.run_state, s.run_sub_state))
                    .unwrap_or_else(|| "never run".into());
                out!("{}\t{:?}\t{last}", record.name, record.provisioning_state);
            }
            Ok(Outcome::Success)
        }
        TemplateCommand::Show { name } => {
            print_json(&record_json(&store.get(name).map_err(store_error)?));
            Ok(Outcome::Success)
        }
        TemplateCommand::Patch { name, file } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
            let patch: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| UsageError(format!("{} is not valid JSON: {e}", file.display())))?;
            match store.patch(name, &patch) {
                Ok(record) => {
                    eprintln!("patched {} ({:?})", record.name, record.provisioning_state);
                    Ok(Outcome::Success)
                }
                Err(StoreError::Invalid(diags)) => {
                    for d in diags.errors() {
                        out!("{d}");
                    }
                    Ok(Outcome::Invalid)
                }
                Err(e @ StoreError::PatchRefused { .. }) => {
                    out!("{}", imagebuilder::core::error_chain(&e));
                    Ok(Outcome::Invalid)
                }
                Err(e) => Err(store_error(e)),
            }
        }
        TemplateCommand::Run { name, engine, json } => {
            run_stored(&store, name, engine, *json, &args.state).await
        }
        TemplateCommand::Cancel { name } => {
            store.request_cancel(name).map_err(store_error)?;
            eprintln!("asked the running build of {name} to cancel");
            Ok(Outcome::Success)
        }
        TemplateCommand::Delete { name } => {
            store.delete(name).map_err(store_error)?;
            eprintln!("deleted {name} and its staging area");
            Ok(Outcome::Success)
        }
        TemplateCommand::Outputs { name } => {
            print_json(&store.outputs(name).map_err(store_error)?);
            Ok(Outcome::Success)
        }
    }
}

async fn run_stored(
    store: &TemplateStore,
    name: &str,
    engine_args: &EngineArgs,
    json: bool,
    state: &StateArgs,
) -> Result<Outcome, UsageError> {
    let engine = engine_args.engine(&state.dir())?;
    let guard = Arc::new(store.begin_run(name).map_err(store_error)?);
    let template = guard.template().clone();
    let record = store.get(name).map_err(store_error)?;

    let mut options = RunOptions::new(guard.run_dir());
    options.run_id = guard.run_id().to_owned();
    options.artifacts_dir = guard.artifacts_dir().to_path_buf();
    options.staging_dir = record.staging_dir.clone();
    options.log_path = Some(guard.customization_log());
    let progress = Arc::new(Progress::new(json));
    let status_guard = guard.clone();
    options.events = Arc::new(Tee {
        progress: progress.clone(),
        also: move |event: &BuildEvent| {
            if let BuildEvent::StateChanged {
                run_state,
                run_sub_state,
            } = event
            {
                if !run_state.is_terminal() {
                    if let Err(e) = status_guard.set_status(*run_state, *run_sub_state, "") {
                        eprintln!(
                            "warning: cannot record the run status: {}",
                            imagebuilder::core::error_chain(&e)
                        );
                    }
                }
            }
        },
    });
    // `template cancel` from another process writes a marker this run polls.
    let cancel = options.cancel.clone();
    cancel_on_ctrl_c(cancel.clone());
    let poll_guard = guard.clone();
    let poller = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if poll_guard.cancel_requested() {
                cancel.cancel();
                break;
            }
        }
    });

    let report = run_and_report(&engine, &template, options, &progress, json).await;
    poller.abort();
    let _ = poller.await;
    guard.record_outputs(&report.outputs).map_err(store_error)?;
    let guard = Arc::try_unwrap(guard)
        .map_err(|_| UsageError("internal error: the run is still referenced".into()))?;
    let state = match report.run_state {
        RunState::Running | RunState::Canceling => RunState::Failed,
        other => other,
    };
    guard
        .finish(state, report.run_sub_state, &report.message)
        .map_err(store_error)?;
    Ok(outcome(&report))
}
