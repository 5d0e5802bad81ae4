//! Why a step failed.

use std::path::PathBuf;

use crate::host::GuestError;

/// A customization or validation step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CustomizeError {
    /// A command exited with a code the step does not accept.
    #[error("{step} exited with code {exit_code}; valid exit codes: {valid:?}")]
    ExitCode {
        /// The step.
        step: String,
        /// The code it exited with.
        exit_code: i32,
        /// The codes that count as success.
        valid: Vec<i64>,
    },
    /// The guest could not run the step.
    #[error("{step} failed")]
    Guest {
        /// The step.
        step: String,
        /// Why.
        #[source]
        source: GuestError,
    },
    /// The guest is not as the step requires (e.g. a File destination's directory is missing).
    #[error("{step}: {message}")]
    Precondition {
        /// The step.
        step: String,
        /// What is missing.
        message: String,
    },
    /// A local file could not be written.
    #[error("{step}: failed to write {path}")]
    Io {
        /// The step.
        step: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The engine did not stage an artifact the step needs (a bug in the caller).
    #[error("{step}: artifact {uri} was not staged")]
    NotStaged {
        /// The step.
        step: String,
        /// The artifact.
        uri: String,
    },
}
