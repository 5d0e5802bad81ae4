//! The SSH communicator: runs commands in a Linux guest and copies files into it, over one
//! authenticated [ssh2](https://docs.rs/ssh2) session per guest (feature `ssh`).
//!
//! [`SshGuest`] implements [`Guest`](imagebuilder_core::host::Guest) for any guest that runs
//! an OpenSSH-compatible server: the QEMU host connects it to the port it forwards, the same
//! way for its fixture images and for stock cloud images.
//!
//! - **Pinned host key.** The server must present exactly the [`HostKey`] in the
//!   [`SshTarget`]; anything else is refused at once with both fingerprints in the error.
//!   There is no trust-on-first-use and no "accept any key".
//! - **Off the runtime.** libssh2 blocks, so every call runs on a blocking thread
//!   (`tokio::task::spawn_blocking`), never on the async runtime's workers. Calls on one guest
//!   are serialized: each holds the session until it returns.
//! - **Streaming.** Output lines reach the [`OutputSink`](imagebuilder_core::host::OutputSink)
//!   as they arrive, attributed to stdout or stderr; invalid UTF-8 is replaced, lines longer
//!   than 64 KiB are passed on in pieces.
//! - **Reconnects.** A broken session is dropped and a new one made on the next call; a call
//!   that finds its reused session dead before anything ran retries once on a new one.
//! - **Uploads** go over SFTP when the server has it, else `cat` on an exec channel; both
//!   write a temporary file and rename it into place and stream the file in chunks.
//! - **Restarts** run the command (default `sudo reboot`), wait for the old session to die,
//!   reconnect with backoff and run the check command until it passes, within the timeout.
//! - **Time limits.** Connecting, the handshake and every blocking read or write are bounded
//!   ([`IO_TIMEOUT`]); the session sends keepalives, and a command silent for 30 s has its
//!   connection checked, so a dead guest fails a call instead of hanging it.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use imagebuilder_core::host::{ExecRequest, Guest, OutputLine};
//! use imagebuilder_drivers::ssh::{HostKey, SshGuest, SshTarget};
//!
//! let target = SshTarget {
//!     host: "127.0.0.1".into(),
//!     port: 2222,
//!     user: "packer".into(),
//!     private_key: "/run/build-42/id_ed25519".into(),
//!     host_key: HostKey::read_file("/run/build-42/ssh_host_ed25519_key.pub")?,
//! };
//! let guest = SshGuest::connect(target, Duration::from_secs(120)).await?;
//! let result = guest
//!     .exec(&ExecRequest::new("uname -a").elevated(), &|line: OutputLine<'_>| {
//!         println!("{:?}: {}", line.stream, line.text)
//!     })
//!     .await?;
//! assert!(result.success());
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::time::Duration;

mod connection;
mod error;
mod exec;
mod guest;
mod host_key;
mod restart;
mod upload;

pub(crate) use exec::shell_quote;
pub use guest::SshGuest;
pub use host_key::{HostKey, HostKeyParseError};

/// The longest any single blocking SSH step (TCP connect, handshake, authentication, one read
/// or write, opening a channel) may take before the call fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the session sends a keepalive while a command runs.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// The command [`Guest::restart`](imagebuilder_core::host::Guest::restart) runs when its
/// options give none.
pub const DEFAULT_RESTART_COMMAND: &str = "sudo reboot";

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Host name or address, e.g. `127.0.0.1` for a port forwarded by QEMU.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User to authenticate as.
    pub user: String,
    /// OpenSSH private key file (e.g. ed25519, unencrypted). Only its path is ever logged.
    pub private_key: PathBuf,
    /// The server's public key, pinned: any other key is refused.
    pub host_key: HostKey,
}

impl SshTarget {
    /// `user@host:port`, as errors name it.
    pub fn address(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}
