//! The communicator's own errors, mapped into [`GuestError`] categories at the API boundary.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use imagebuilder_core::host::GuestError;
use libssh2_sys as raw;

use super::IO_TIMEOUT;

/// What went wrong inside the blocking SSH code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SshError {
    /// A local or socket I/O call failed.
    #[error("failed to {what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The connection broke while streaming data (a channel read or write failed).
    #[error("lost the connection while trying to {what}")]
    Lost {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A libssh2 call failed.
    #[error("failed to {what}")]
    Ssh {
        what: String,
        #[source]
        source: ssh2::Error,
    },
    /// The server is not the one whose key was pinned; never retried.
    #[error(
        "the SSH server at {addr} presented the {algorithm} host key {actual}, \
         which is not the pinned key {expected}; refusing to connect"
    )]
    HostKeyMismatch {
        addr: String,
        algorithm: String,
        actual: String,
        expected: String,
    },
    /// Something the caller must fix, never retried (a missing key file, a bad path).
    #[error("{0}")]
    Invalid(String),
    /// The guest answered but refused or failed the operation.
    #[error("{0}")]
    Refused(String),
    /// The TCP connection was accepted but no SSH banner came in time. QEMU's user-mode
    /// network accepts on the host side before the guest listens, so this is retried.
    #[error("no SSH banner from {addr} within {after:?} (the guest's sshd is not answering yet)")]
    NoBanner { addr: String, after: Duration },
    /// A bounded wait ran out; `last` is the failure seen last, if any.
    #[error("did not {what} within {after:?}")]
    Deadline {
        what: String,
        after: Duration,
        last: Option<Box<SshError>>,
    },
    /// The caller dropped the future.
    #[error("the operation was abandoned by its caller")]
    Cancelled,
}

impl SshError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn lost(what: impl Into<String>, source: io::Error) -> Self {
        Self::Lost {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn ssh(what: impl Into<String>, source: ssh2::Error) -> Self {
        Self::Ssh {
            what: what.into(),
            source,
        }
    }

    /// Retrying cannot help: the wrong server, a missing key file, an abandoned call.
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::HostKeyMismatch { .. } | Self::Invalid(_) | Self::Cancelled
        )
    }

    /// The connection itself is gone or unusable (as opposed to a refused request on a live
    /// connection), so the session must be dropped and a new one made.
    pub(crate) fn is_transport(&self) -> bool {
        match self {
            Self::Io { source, .. } => io_is_transport(source) || io_is_timeout(source),
            Self::Lost { .. } => true,
            Self::Ssh { source, .. } => ssh_is_transport(source) || ssh_is_timeout(source),
            Self::Deadline { .. } | Self::NoBanner { .. } => true,
            Self::HostKeyMismatch { .. } | Self::Invalid(_) | Self::Refused(_) => false,
            Self::Cancelled => true,
        }
    }

    /// Maps this error into the public category, `operation` saying what the caller was doing.
    pub(crate) fn into_guest(self, operation: &str) -> GuestError {
        match self {
            // The deadline says best what was awaited ("answer SSH as ...", "come back after
            // `sudo reboot`"); `operation` would repeat the call's name.
            Self::Deadline { what, after, last } => GuestError::Timeout {
                operation: match last {
                    Some(last) => format!("{what} (last error: {})", chain(&*last)),
                    None => what,
                },
                after,
            },
            Self::Io { ref source, .. } | Self::Lost { ref source, .. }
                if io_is_timeout(source) =>
            {
                GuestError::Timeout {
                    operation: format!("{operation} ({})", chain(&self)),
                    after: IO_TIMEOUT,
                }
            }
            Self::Ssh { ref source, .. } if ssh_is_timeout(source) => GuestError::Timeout {
                operation: format!("{operation} ({})", chain(&self)),
                after: IO_TIMEOUT,
            },
            other if other.is_transport() => GuestError::Disconnected {
                operation: operation.to_owned(),
                source: Box::new(other),
            },
            other => GuestError::Failed {
                operation: operation.to_owned(),
                source: Box::new(other),
            },
        }
    }
}

/// An error and its sources on one line, `a: b: c`.
pub(crate) fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        let _ = write!(text, ": {next}");
        source = next.source();
    }
    text
}

fn io_is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn io_is_transport(error: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | UnexpectedEof
            | AddrNotAvailable
            | HostUnreachable
            | NetworkUnreachable
    )
}

fn ssh_is_timeout(error: &ssh2::Error) -> bool {
    matches!(
        error.code(),
        ssh2::ErrorCode::Session(raw::LIBSSH2_ERROR_TIMEOUT | raw::LIBSSH2_ERROR_SOCKET_TIMEOUT)
    )
}

fn ssh_is_transport(error: &ssh2::Error) -> bool {
    matches!(
        error.code(),
        ssh2::ErrorCode::Session(
            raw::LIBSSH2_ERROR_BANNER_RECV
                | raw::LIBSSH2_ERROR_BANNER_SEND
                | raw::LIBSSH2_ERROR_INVALID_MAC
                | raw::LIBSSH2_ERROR_KEX_FAILURE
                | raw::LIBSSH2_ERROR_SOCKET_SEND
                | raw::LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE
                | raw::LIBSSH2_ERROR_DECRYPT
                | raw::LIBSSH2_ERROR_SOCKET_DISCONNECT
                | raw::LIBSSH2_ERROR_PROTO
                | raw::LIBSSH2_ERROR_CHANNEL_CLOSED
                | raw::LIBSSH2_ERROR_CHANNEL_EOF_SENT
                | raw::LIBSSH2_ERROR_SOCKET_RECV
                | raw::LIBSSH2_ERROR_BAD_SOCKET
                | raw::LIBSSH2_ERROR_ENCRYPT
        )
    )
}
