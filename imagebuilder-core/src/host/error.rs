//! Errors of hosts and guests, by category, as STYLE.md asks: callers match on what kind of
//! failure it was, and the backend's own error is kept as the source.

use std::time::Duration;

/// Shorthand for a backend's own error, kept as the source.
type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A build host operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The host cannot do this at all (see [`super::Capabilities`]).
    #[error("{host} does not support {operation}")]
    Unsupported {
        /// What was asked, e.g. "Hyper-V generation V2 (UEFI)".
        operation: String,
        /// Which host.
        host: String,
    },
    /// The operation did not finish in time.
    #[error("{operation} did not finish within {after:?}")]
    Timeout {
        /// What was being done.
        operation: String,
        /// How long was waited.
        after: Duration,
    },
    /// The operation failed.
    #[error("failed to {operation}")]
    Failed {
        /// What was being done, e.g. "provision the build VM".
        operation: String,
        /// Why.
        #[source]
        source: Source,
    },
}

impl HostError {
    /// A failure with a plain message as its source.
    pub fn failed(operation: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Failed {
            operation: operation.into(),
            source: message.into().into(),
        }
    }
}

/// A guest operation (exec, upload, restart) failed. A command that ran and exited non-zero is
/// not an error here: it is an [`super::ExecResult`] the caller judges.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuestError {
    /// The guest could not be reached or the connection broke.
    #[error("lost the connection to the guest while trying to {operation}")]
    Disconnected {
        /// What was being done.
        operation: String,
        /// Why.
        #[source]
        source: Source,
    },
    /// The guest did not answer in time.
    #[error("the guest did not {operation} within {after:?}")]
    Timeout {
        /// What was being done.
        operation: String,
        /// How long was waited.
        after: Duration,
    },
    /// The guest refused or failed the operation.
    #[error("failed to {operation} in the guest")]
    Failed {
        /// What was being done.
        operation: String,
        /// Why.
        #[source]
        source: Source,
    },
}

impl GuestError {
    /// A failure with a plain message as its source.
    pub fn failed(operation: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Failed {
            operation: operation.into(),
            source: message.into().into(),
        }
    }
}
