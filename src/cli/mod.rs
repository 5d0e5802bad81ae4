//! Command-line interface: argument definitions and dispatch.
//!
//! Exit codes are shared by every command: 0 success, 1 the input is invalid or the work
//! failed, 2 usage or I/O errors.

mod parameters;
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
}

/// How a command ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Everything was valid or succeeded.
    Success,
    /// The input was invalid or the work failed.
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
    };
    outcome.into()
}
