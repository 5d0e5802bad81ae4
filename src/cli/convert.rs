//! `imagebuilder convert`: one disk image format to another, streaming and sparse-aware.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use imagebuilder::dist::disk::{convert, sha256_file};
use imagebuilder::template::model::OutputFormat;
use indicatif::{ProgressBar, ProgressStyle};

use super::setup::DiskFormatArg;
use super::{Outcome, UsageError};

/// Arguments of `imagebuilder convert`.
#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// The image to read.
    input: PathBuf,
    /// The file to write; replaced only once complete.
    output: PathBuf,
    /// Format to write.
    #[arg(long, short = 'O', value_enum)]
    format: OutputArg,
    /// Format of the input (named, never guessed from its contents).
    #[arg(long, short = 'f', value_enum, default_value_t = DiskFormatArg::Qcow2)]
    input_format: DiskFormatArg,
    /// Also print the output's sha256 (reads it back: every byte, zeros included, is hashed,
    /// which takes longer than the conversion).
    #[arg(long)]
    sha256: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputArg {
    /// Fixed VHD, virtual size rounded up to a whole MiB (what Azure needs).
    Vhd,
    /// Dynamic VHD.
    VhdDynamic,
    /// qcow2 v3.
    Qcow2,
    /// Raw, sparse.
    Raw,
}

pub(crate) fn run(args: &ConvertArgs) -> Result<Outcome, UsageError> {
    let format = match args.format {
        OutputArg::Vhd => OutputFormat::VhdFixed,
        OutputArg::VhdDynamic => OutputFormat::VhdDynamic,
        OutputArg::Qcow2 => OutputFormat::Qcow2,
        OutputArg::Raw => OutputFormat::Raw,
    };
    let input_format = args.input_format.into();
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let result = convert(
        &args.input,
        input_format,
        &args.output,
        format,
        &mut progress,
    );
    bar.finish_and_clear();
    let converted = result.map_err(|e| UsageError(imagebuilder::core::error_chain(&e)))?;
    let digest = if args.sha256 {
        let sha256 = sha256_file(&args.output)
            .map_err(|e| UsageError(imagebuilder::core::error_chain(&e)))?;
        format!(", sha256 {sha256}")
    } else {
        String::new()
    };
    out!(
        "{}: {format}, virtual size {} bytes, file size {} bytes{digest}",
        args.output.display(),
        converted.virtual_size,
        converted.size,
    );
    Ok(Outcome::Success)
}
