//! `imagebuilder build`: run a template file directly, Packer-style, without storing it.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use imagebuilder::core::engine::{new_run_id, RunOptions};
use imagebuilder::template::parse_document;

use super::parameters::TemplateInputArgs;
use super::progress::Progress;
use super::run::{cancel_on_ctrl_c, outcome, run_and_report};
use super::setup::{EngineArgs, StateArgs};
use super::{Outcome, UsageError};

/// Arguments of `imagebuilder build`.
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// Template file: bare properties, a resource object or an ARM deployment template.
    #[arg(value_name = "TEMPLATE")]
    template: PathBuf,

    #[command(flatten)]
    input: TemplateInputArgs,

    #[command(flatten)]
    engine: EngineArgs,

    #[command(flatten)]
    state: StateArgs,

    /// One JSON event per line, then a JSON object with runState and the run outputs.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: &BuildArgs) -> Result<Outcome, UsageError> {
    let options = args.input.parse_options()?;
    let text = std::fs::read_to_string(&args.template).map_err(|e| {
        UsageError(format!(
            "cannot read template {}: {e}",
            args.template.display()
        ))
    })?;
    let doc = parse_document(&text, &options).map_err(|diags| {
        let lines: Vec<String> = diags.errors().map(ToString::to_string).collect();
        UsageError(format!(
            "{} is not a valid template:\n{}",
            args.template.display(),
            lines.join("\n")
        ))
    })?;
    // Warnings (fields with no effect here, lenient spellings) go to stderr: stdout may be
    // the JSON event stream.
    for warning in doc.warnings.warnings() {
        eprintln!("{}: {warning}", args.template.display());
    }
    let state_dir = args.state.dir();
    let engine = args.engine.engine(&state_dir)?;
    let progress = Arc::new(Progress::new(args.json));
    let mut worst = Outcome::Success;
    // A document without a name (bare properties) is named after its file.
    let stem = args
        .template
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    for mut template in doc.templates {
        if template.name.is_none() {
            template.name = stem.clone();
        }
        let run_id = new_run_id();
        let run_dir = state_dir.join("builds").join(&run_id);
        let mut run_options = RunOptions::new(&run_dir);
        run_options.run_id = run_id;
        run_options.events = progress.clone();
        cancel_on_ctrl_c(run_options.cancel.clone());
        let report = run_and_report(&engine, &template, run_options, &progress, args.json).await;
        worst = worst.max(outcome(&report));
    }
    Ok(worst)
}
