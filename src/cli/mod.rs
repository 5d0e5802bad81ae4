//! Command-line interface: argument definitions and dispatch.
//!
//! Exit codes are shared by every command: 0 success, 1 the input is invalid or the build
//! failed or was canceled, 2 usage or I/O errors, 3 a build partially succeeded.

/// Prints a line on stdout; a closed pipe (`| head`) is not an error worth a panic, and the
/// command still ends with its own exit code.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod build;
mod convert;
mod gallery_cmd;
mod parameters;
mod progress;
mod run;
mod setup;
mod template_cmd;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Build customized VM images from Azure VM Image Builder templates on hardware you control.
#[derive(Debug, Parser)]
#[command(name = "imagebuilder", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check image templates against AIB's schema and rules.
    Validate(validate::ValidateArgs),
    /// Build a template file: provision, customize, capture, validate, distribute.
    Build(build::BuildArgs),
    /// Manage stored templates: create, list, show, patch, run, cancel, delete, outputs.
    Template(template_cmd::TemplateArgs),
    /// Convert a disk image: qcow2, raw or VHD in; fixed VHD, dynamic VHD, qcow2 or raw out.
    Convert(convert::ConvertArgs),
    /// Make and inspect compute galleries: create, define, list, versions, show, delete-version.
    Gallery(gallery_cmd::GalleryArgs),
}

/// How a command ended, as the process exit code; later variants are worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// Everything was valid or succeeded.
    Success,
    /// A build published some targets but not all.
    Partial,
    /// The input was invalid or the build failed or was canceled.
    Invalid,
    /// The command could not run: bad arguments or unreadable files.
    UsageOrIo,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Invalid => ExitCode::from(1),
            Outcome::UsageOrIo => ExitCode::from(2),
            Outcome::Partial => ExitCode::from(3),
        }
    }
}

/// A failure that stops a command before it can judge its input (exit code 2).
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Build(args) => block_on(async move { build::run(&args).await }),
        Command::Template(args) => block_on(async move { template_cmd::run(&args).await }),
        Command::Convert(args) => convert::run(&args).unwrap_or_else(|UsageError(message)| {
            eprintln!("imagebuilder: {message}");
            Outcome::UsageOrIo
        }),
        Command::Gallery(args) => block_on(async move { gallery_cmd::run(&args).await }),
    };
    outcome.into()
}

/// Runs an async command on a fresh runtime; a usage error prints and exits 2.
fn block_on(command: impl std::future::Future<Output = Result<Outcome, UsageError>>) -> Outcome {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("imagebuilder: cannot start the async runtime: {e}");
            return Outcome::UsageOrIo;
        }
    };
    match runtime.block_on(command) {
        Ok(outcome) => outcome,
        Err(UsageError(message)) => {
            eprintln!("imagebuilder: {message}");
            Outcome::UsageOrIo
        }
    }
}
