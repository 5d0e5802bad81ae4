//! One authenticated SSH session and how it is made. Everything here blocks: it runs on a
//! blocking thread, never on the async runtime.

use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, MethodType, Session, Sftp};

use super::error::{chain, SshError};
use super::host_key::fingerprint;
use super::{SshTarget, IO_TIMEOUT, KEEPALIVE_INTERVAL};

/// First pause between connection attempts; doubled after each failure up to the cap.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// First wait for the server's banner after the TCP connect; doubled after each attempt that
/// saw none, up to the I/O timeout, so a slow but live sshd is still reached. A listening
/// sshd sends its banner at once; an accepted connection that stays silent is usually QEMU's
/// user-mode network retrying a guest that does not listen yet, with a growing SYN backoff
/// that a fresh connection skips.
const BANNER_WAIT_START: Duration = Duration::from_secs(2);

/// Whether the server has an SFTP subsystem, learned on first use.
enum SftpState {
    Unknown,
    Available(Sftp),
    Unavailable,
}

/// An authenticated session to the guest.
pub(crate) struct Connection {
    session: Session,
    /// A second handle on the session's socket, only to wait on it with poll(2).
    socket: TcpStream,
    sftp: SftpState,
}

/// What every blocking operation needs: where to connect, how long a reconnect may take, and
/// whether the caller has gone away.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) target: Arc<SshTarget>,
    pub(crate) reconnect_timeout: Duration,
    pub(crate) cancel: Arc<AtomicBool>,
}

impl Context {
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    pub(crate) fn check_cancelled(&self) -> Result<(), SshError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(SshError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleeps until `until` (or less if cancelled), waking often enough to notice a cancel.
    pub(crate) fn sleep_until(&self, until: Instant) -> Result<(), SshError> {
        loop {
            self.check_cancelled()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }

    /// Returns the open connection, making one first (with retries bounded by the reconnect
    /// timeout) when there is none.
    pub(crate) fn ensure<'a>(
        &self,
        slot: &'a mut Option<Connection>,
    ) -> Result<&'a mut Connection, SshError> {
        if slot.is_none() {
            let deadline = Instant::now() + self.reconnect_timeout;
            *slot = Some(self.connect_until(deadline, self.reconnect_timeout)?);
        }
        Ok(slot.as_mut().expect("just connected"))
    }

    /// Connects, retrying with a short, growing backoff until `deadline`. A host-key
    /// mismatch or a missing key file fails at once; a timeout names the last failure.
    pub(crate) fn connect_until(
        &self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<Connection, SshError> {
        let target = &self.target;
        let mut pause = BACKOFF_START;
        let mut banner_wait = BANNER_WAIT_START;
        let mut attempts = 0u32;
        loop {
            self.check_cancelled()?;
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let left = remaining.max(Duration::from_millis(1));
            let error = match connect_once(target, left, banner_wait) {
                Ok(connection) => {
                    tracing::debug!(
                        target = %target.address(),
                        attempts,
                        "SSH session authenticated"
                    );
                    return Ok(connection);
                }
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => error,
            };
            tracing::trace!(attempt = attempts, error = %chain(&error), "SSH connection attempt failed");
            if let SshError::NoBanner { .. } = error {
                // That attempt already waited; try a fresh connection at once.
                banner_wait = (banner_wait * 2).min(IO_TIMEOUT);
            } else {
                self.sleep_until((Instant::now() + pause).min(deadline))?;
            }
            if Instant::now() >= deadline {
                return Err(SshError::Deadline {
                    what: format!("answer SSH as {}", target.address()),
                    after: budget,
                    last: Some(Box::new(error)),
                });
            }
            pause = (pause * 2).min(BACKOFF_CAP);
        }
    }
}

/// One attempt: TCP connect, the server's banner (within `banner_wait`), handshake, host key
/// check, public-key authentication; no step waits longer than `budget`.
fn connect_once(
    target: &SshTarget,
    budget: Duration,
    banner_wait: Duration,
) -> Result<Connection, SshError> {
    let addr = format!("{}:{}", target.host, target.port);
    match std::fs::metadata(&target.private_key) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            return Err(SshError::Invalid(format!(
                "the private key {} is not a file",
                target.private_key.display()
            )))
        }
        Err(error) => {
            return Err(SshError::Invalid(format!(
                "cannot read the private key {}: {error}",
                target.private_key.display()
            )))
        }
    }

    let step = budget.min(IO_TIMEOUT);
    let socket_addr = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| SshError::io(format!("resolve {addr}"), e))?
        .next()
        .ok_or_else(|| SshError::Invalid(format!("{addr} resolves to no address")))?;
    let tcp = TcpStream::connect_timeout(&socket_addr, step)
        .map_err(|e| SshError::io(format!("connect to {addr}"), e))?;
    let _ = tcp.set_nodelay(true);
    await_banner(&tcp, &addr, banner_wait.min(step))?;
    let socket = tcp
        .try_clone()
        .map_err(|e| SshError::io("duplicate the socket handle", e))?;

    let mut session = Session::new().map_err(|e| SshError::ssh("create an SSH session", e))?;
    session.set_tcp_stream(tcp);
    session.set_timeout(millis(step));
    // Offer only the pinned key's algorithms so that a server with several host keys
    // presents the pinned one.
    session
        .method_pref(MethodType::HostKey, target.host_key.handshake_algorithms())
        .map_err(|e| SshError::ssh("choose the host key algorithm", e))?;
    session
        .handshake()
        .map_err(|e| SshError::ssh(format!("complete the SSH handshake with {addr}"), e))?;

    let (presented, _) = session
        .host_key()
        .ok_or_else(|| SshError::HostKeyMismatch {
            addr: addr.clone(),
            algorithm: "(none)".into(),
            actual: "(none)".into(),
            expected: target.host_key.fingerprint(),
        })?;
    if presented != target.host_key.blob() {
        let algorithm = super::HostKey::from_blob(presented)
            .map(|key| key.algorithm().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        return Err(SshError::HostKeyMismatch {
            addr,
            algorithm,
            actual: fingerprint(presented),
            expected: target.host_key.fingerprint(),
        });
    }

    // libssh2 reads the key file itself; its contents never pass through this code or a log.
    session
        .userauth_pubkey_file(&target.user, None, &target.private_key, None)
        .map_err(|e| {
            SshError::ssh(
                format!(
                    "authenticate as {} with the key {}",
                    target.user,
                    target.private_key.display()
                ),
                e,
            )
        })?;
    if !session.authenticated() {
        return Err(SshError::Refused(format!(
            "the server did not accept the key {} for {}",
            target.private_key.display(),
            target.user
        )));
    }
    session.set_timeout(millis(IO_TIMEOUT));
    session.set_keepalive(true, KEEPALIVE_INTERVAL.as_secs() as u32);
    Ok(Connection {
        session,
        socket,
        sftp: SftpState::Unknown,
    })
}

/// Waits until the server has sent something (its banner), without consuming it: libssh2
/// reads it during the handshake.
fn await_banner(tcp: &TcpStream, addr: &str, wait: Duration) -> Result<(), SshError> {
    tcp.set_read_timeout(Some(wait))
        .map_err(|e| SshError::io("set the banner wait", e))?;
    let mut first = [0u8; 1];
    let peeked = tcp.peek(&mut first);
    tcp.set_read_timeout(None)
        .map_err(|e| SshError::io("clear the banner wait", e))?;
    match peeked {
        Ok(0) => Err(SshError::io(
            format!("read the SSH banner from {addr}"),
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the connection was closed before the server spoke",
            ),
        )),
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(SshError::NoBanner {
                addr: addr.to_owned(),
                after: wait,
            })
        }
        Err(e) => Err(SshError::io(format!("read the SSH banner from {addr}"), e)),
    }
}

/// Shutting the socket down first makes libssh2's teardown fail fast instead of waiting for
/// the server to confirm closing each channel (which a running command or a dead guest would
/// make it wait for until the I/O timeout).
impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis())
        .unwrap_or(u32::MAX)
        .max(1)
}

impl Connection {
    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    /// Says goodbye to the server (blocking, bounded by the I/O timeout) and drops the session.
    pub(crate) fn close(self) {
        self.session.set_blocking(true);
        let _ = self
            .session
            .disconnect(None, "imagebuilder closed the session", None);
    }

    /// Starts the SFTP subsystem on first use; false when the server has none (then uploads
    /// go over exec).
    pub(crate) fn start_sftp(&mut self) -> Result<bool, SshError> {
        if let SftpState::Unknown = self.sftp {
            self.sftp = match self.session.sftp() {
                Ok(sftp) => SftpState::Available(sftp),
                Err(error) => {
                    let error = SshError::ssh("start the SFTP subsystem", error);
                    if error.is_transport() {
                        return Err(error);
                    }
                    tracing::debug!(error = %chain(&error), "no SFTP; uploads go over exec");
                    SftpState::Unavailable
                }
            };
        }
        Ok(self.sftp().is_some())
    }

    /// The SFTP subsystem once [`Connection::start_sftp`] found it.
    pub(crate) fn sftp(&self) -> Option<&Sftp> {
        match &self.sftp {
            SftpState::Available(sftp) => Some(sftp),
            SftpState::Unknown | SftpState::Unavailable => None,
        }
    }

    /// True when the server still answers: it confirms opening a channel in time.
    pub(crate) fn is_alive(&self, budget: Duration) -> bool {
        let blocking = self.session.is_blocking();
        self.session.set_blocking(true);
        self.session.set_timeout(millis(budget.min(IO_TIMEOUT)));
        let alive = match self.session.channel_session() {
            Ok(mut channel) => {
                let _ = channel.close();
                true
            }
            Err(_) => false,
        };
        self.session.set_timeout(millis(IO_TIMEOUT));
        self.session.set_blocking(blocking);
        alive
    }

    /// Waits (at most `max`) until the socket can make progress in the direction libssh2 is
    /// blocked on, as a non-blocking session must between reads.
    pub(crate) fn wait_socket(&self, max: Duration) {
        let events = match self.session.block_directions() {
            BlockDirections::Outbound => libc::POLLOUT,
            BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
            BlockDirections::Inbound | BlockDirections::None => libc::POLLIN,
        };
        let mut fds = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events,
            revents: 0,
        };
        let timeout = libc::c_int::try_from(max.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd that lives across the call; the fd stays open because
        // `self.socket` owns a duplicate of it.
        unsafe {
            libc::poll(&mut fds, 1, timeout);
        }
    }
}
