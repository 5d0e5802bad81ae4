//! `imagebuilder validate`: check template documents and report every problem.

use std::path::PathBuf;

use clap::Args;
use imagebuilder::template::{parse_document, Diagnostic, Diagnostics, InputShape};
use serde::Serialize;

use super::parameters::TemplateInputArgs;
use super::{Outcome, UsageError};

/// Arguments of `imagebuilder validate`.
#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Template files: bare properties, a resource object, or an ARM deployment template.
    #[arg(required = true, value_name = "TEMPLATE")]
    templates: Vec<PathBuf>,

    #[command(flatten)]
    input: TemplateInputArgs,

    /// Print one JSON document with every error and warning instead of text lines.
    #[arg(long)]
    json: bool,
}

/// What validating one file found.
#[derive(Debug, Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    shape: Option<InputShape>,
    templates: usize,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    valid: bool,
    files: &'a [FileReport],
}

pub(crate) fn run(args: &ValidateArgs) -> Outcome {
    match validate_all(args) {
        Ok(reports) => {
            let valid = reports.iter().all(|r| r.valid);
            if args.json {
                let doc = JsonReport {
                    valid,
                    files: &reports,
                };
                out!(
                    "{}",
                    serde_json::to_string_pretty(&doc).expect("reports serialize")
                );
            } else {
                print_text(&reports);
            }
            if valid {
                Outcome::Success
            } else {
                Outcome::Invalid
            }
        }
        Err(UsageError(message)) => {
            eprintln!("imagebuilder validate: {message}");
            Outcome::UsageOrIo
        }
    }
}

fn validate_all(args: &ValidateArgs) -> Result<Vec<FileReport>, UsageError> {
    let options = args.input.parse_options()?;
    args.templates
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("cannot read template {}: {e}", path.display())))?;
            let file = path.display().to_string();
            Ok(match parse_document(&text, &options) {
                Ok(doc) => FileReport {
                    file,
                    valid: true,
                    shape: Some(doc.shape),
                    templates: doc.templates.len(),
                    errors: Vec::new(),
                    warnings: doc.warnings.warnings().cloned().collect(),
                },
                Err(diags) => invalid_report(file, &diags),
            })
        })
        .collect()
}

fn invalid_report(file: String, diags: &Diagnostics) -> FileReport {
    FileReport {
        file,
        valid: false,
        shape: None,
        templates: 0,
        errors: diags.errors().cloned().collect(),
        warnings: diags.warnings().cloned().collect(),
    }
}

/// Diagnostics one a line on stdout (`PATH: CODE: message`, `PATH: warning: message`);
/// a summary a file on stderr, so stdout stays easy to parse.
/// With several files, each line starts with its file. Control characters from the template
/// are escaped so one problem is always one line.
fn print_text(reports: &[FileReport]) {
    for report in reports {
        let prefix = if reports.len() > 1 {
            format!("{}: ", report.file)
        } else {
            String::new()
        };
        for d in report.errors.iter().chain(&report.warnings) {
            out!("{prefix}{}", one_line(&d.to_string()));
        }
        let warnings = plural(report.warnings.len(), "warning");
        if report.valid {
            let templates = plural(report.templates, "template");
            eprintln!("{}: valid ({templates}, {warnings})", report.file);
        } else {
            let errors = plural(report.errors.len(), "error");
            eprintln!("{}: invalid ({errors}, {warnings})", report.file);
        }
    }
}

/// Control characters written as escapes (`\n`), quotes left alone.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
