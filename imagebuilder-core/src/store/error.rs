//! The one error type of the template store.

use std::path::PathBuf;

use crate::run::RunState;
use crate::template::Diagnostics;

/// Why a template store operation failed.
///
/// The variants are categories a caller acts on (report, retry, fix the input); the file
/// involved is named wherever one is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No template of that name exists.
    #[error("image template '{name}' not found")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// A template of that name already exists; AIB templates are immutable, so it is never
    /// replaced (delete it first).
    #[error("image template '{name}' already exists; update of image templates is not supported, delete and recreate it")]
    AlreadyExists {
        /// The name asked for.
        name: String,
    },
    /// The name is not a valid template name (`^[A-Za-z0-9-_.]{1,64}$`, not `.` or `..`).
    #[error("'{name}' is not a valid image template name; expected 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// The template has an active run (running or canceling).
    #[error("image template '{name}' has an active run")]
    RunActive {
        /// The template.
        name: String,
    },
    /// A cancel was asked for but the template has no active run.
    #[error("image template '{name}' has no active run")]
    NoActiveRun {
        /// The template.
        name: String,
    },
    /// A PATCH document was refused before validation.
    #[error("patch refused at '{field}': {reason}")]
    PatchRefused {
        /// JSON path of the refused field, e.g. `properties.source`.
        field: String,
        /// Why.
        reason: String,
    },
    /// The template (as given, or as a patch would leave it) does not validate.
    #[error("invalid image template: {}", summary(.0))]
    Invalid(Diagnostics),
    /// A secure parameter value is part of an object key. The store keeps secure values out
    /// of `template.json` string by string; it cannot do so for a key, so such a template is
    /// not stored.
    #[error("a secure parameter value is used in a key of the object at '{pointer}'; only string values may hold secure values in a stored template")]
    SecretInName {
        /// JSON pointer of the object whose key holds the value.
        pointer: String,
    },
    /// A run status was given to the wrong operation: `set_status` takes an ongoing state,
    /// `finish` a terminal one.
    #[error("run state {run_state:?} cannot be used to {operation}")]
    InvalidRunState {
        /// What was being done: `update a run's status` or `finish a run`.
        operation: &'static str,
        /// The state given.
        run_state: RunState,
    },
    /// A file system operation failed.
    #[error("failed to {operation} '{}'", path.display())]
    Io {
        /// What was being done, e.g. `write`, `lock`, `remove`.
        operation: String,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A state file exists but cannot be read as what it should hold (crash of an older
    /// version, hand edit, disk error).
    #[error("corrupt state file '{}': {message}", path.display())]
    Corrupt {
        /// The file (or directory).
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl StoreError {
    /// `operation` on `path` failed with `source`.
    pub fn io(operation: &str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            operation: operation.to_owned(),
            path: path.into(),
            source,
        }
    }

    /// The file at `path` is not what the store wrote.
    pub fn corrupt(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The first error and how many more there are.
pub(crate) fn summary(diags: &Diagnostics) -> String {
    let mut errors = diags.errors();
    match errors.next() {
        None => "no errors recorded".to_owned(),
        Some(first) => match errors.count() {
            0 => first.to_string(),
            more => format!("{first} (and {more} more)"),
        },
    }
}
