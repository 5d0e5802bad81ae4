//! [`SshGuest`]: the async [`Guest`] over the blocking SSH code.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use imagebuilder_core::host::{
    ExecRequest, ExecResult, Guest, GuestError, OutputLine, OutputSink, OutputStream,
    RestartOptions,
};
use tokio::sync::{mpsc, Mutex, OwnedMutexGuard};
use tokio::task::JoinHandle;

use super::connection::{Connection, Context};
use super::error::SshError;
use super::{exec, restart, upload, SshTarget};

/// Lines queued between the SSH thread and the sink; a slow sink slows the reader instead of
/// growing memory.
const LINE_QUEUE: usize = 1024;

type Slot = Option<Connection>;

/// A guest reached over SSH. See the [module docs](super) for what it guarantees.
///
/// # Contract
/// As [`Guest`]; in addition every call on one `SshGuest` runs after the previous one has
/// finished (calls from several tasks are serialized, in the order they asked).
///
/// # Errors
/// [`GuestError::Timeout`] when the guest does not answer in time (naming the last failure),
/// [`GuestError::Disconnected`] when the connection breaks mid-call, [`GuestError::Failed`]
/// for a refused host key, a missing key file, a missing upload directory and the like.
///
/// # Cancellation
/// Dropping a returned future stops the SSH thread within about 100 ms; a command already
/// started may go on running in the guest.
pub struct SshGuest {
    target: Arc<SshTarget>,
    reconnect_timeout: Duration,
    slot: Arc<Mutex<Slot>>,
}

impl SshGuest {
    /// Waits until the guest's SSH server answers and accepts the key, retrying with a short
    /// backoff (100 ms doubling up to 2 s) for at most `timeout`, which also bounds later
    /// reconnects.
    ///
    /// # Errors
    /// [`GuestError::Failed`] at once when the server's host key is not the pinned one or the
    /// private key cannot be read; [`GuestError::Timeout`] naming the last failure when the
    /// guest does not answer within `timeout`.
    pub async fn connect(target: SshTarget, timeout: Duration) -> Result<Self, GuestError> {
        let guest = Self {
            target: Arc::new(target),
            reconnect_timeout: timeout,
            slot: Arc::new(Mutex::new(None)),
        };
        let operation = format!("open an SSH session as {}", guest.target.address());
        let (task, _cancel) = guest
            .spawn(move |slot, ctx| {
                let deadline = Instant::now() + ctx.reconnect_timeout;
                *slot = Some(ctx.connect_until(deadline, ctx.reconnect_timeout)?);
                Ok(())
            })
            .await;
        join(task, &operation).await?;
        Ok(guest)
    }

    /// Where this guest is reached.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Closes the session (after any call in progress); the next call reconnects.
    pub async fn disconnect(&self) {
        let connection = self.slot.lock().await.take();
        if let Some(connection) = connection {
            // Saying goodbye may block on a dead socket, so not on the runtime.
            let _ = tokio::task::spawn_blocking(move || connection.close()).await;
        }
    }

    /// Runs `work` on a blocking thread once every earlier call has finished. A transport
    /// failure drops the session so that the next call makes a new one. Dropping the
    /// returned guard tells `work` to stop.
    async fn spawn<T, F>(&self, work: F) -> (JoinHandle<Result<T, SshError>>, CancelOnDrop)
    where
        T: Send + 'static,
        F: FnOnce(&mut Slot, &Context) -> Result<T, SshError> + Send + 'static,
    {
        let mut slot: OwnedMutexGuard<Slot> = self.slot.clone().lock_owned().await;
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let ctx = Context {
            target: self.target.clone(),
            reconnect_timeout: self.reconnect_timeout,
            cancel: cancel.0.clone(),
        };
        let task = tokio::task::spawn_blocking(move || {
            let result = work(&mut slot, &ctx);
            if matches!(&result, Err(error) if error.is_transport()) {
                *slot = None;
            }
            result
        });
        (task, cancel)
    }
}

/// Waits for the blocking work and maps its error for `operation`.
async fn join<T>(task: JoinHandle<Result<T, SshError>>, operation: &str) -> Result<T, GuestError> {
    match task.await {
        Ok(result) => result.map_err(|error| error.into_guest(operation)),
        Err(error) => Err(GuestError::failed(
            operation,
            format!("the SSH worker thread failed: {error}"),
        )),
    }
}

/// Sets the flag when the async call that owns it goes away (completed or dropped).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The session and a fresh channel on it. A reused session that fails already at opening
/// the channel (nothing has run yet) is replaced by a new one, once.
pub(crate) fn channel_on<'a>(
    slot: &'a mut Slot,
    ctx: &Context,
) -> Result<(&'a Connection, ssh2::Channel), SshError> {
    let reused = slot.is_some();
    let first = exec::open_channel(ctx.ensure(slot)?);
    let channel = match first {
        Ok(channel) => channel,
        Err(error) if reused && error.is_transport() => {
            tracing::debug!(target = %ctx.target.address(), "SSH session is stale; reconnecting");
            *slot = None;
            exec::open_channel(ctx.ensure(slot)?)?
        }
        Err(error) => return Err(error),
    };
    Ok((slot.as_ref().expect("connected above"), channel))
}

/// A command shortened for error messages.
fn abbreviate(command: &str) -> String {
    let line = command.lines().next().unwrap_or_default();
    let mut short: String = line.chars().take(80).collect();
    if short.len() < command.len() {
        short.push_str(" ...");
    }
    short
}

#[async_trait]
impl Guest for SshGuest {
    async fn exec(
        &self,
        request: &ExecRequest,
        output: &dyn OutputSink,
    ) -> Result<ExecResult, GuestError> {
        let operation = format!("run `{}`", abbreviate(&request.command));
        let command = if request.elevated {
            exec::elevate(&request.command)
        } else {
            request.command.clone()
        };
        let (lines, mut received) = mpsc::channel::<(OutputStream, String)>(LINE_QUEUE);
        let (task, _cancel) = self
            .spawn(move |slot, ctx| {
                let mut emit = |stream, text| lines.blocking_send((stream, text)).is_ok();
                let (connection, channel) = channel_on(slot, ctx)?;
                exec::run_on(connection, ctx, channel, &command, &mut emit, None)
            })
            .await;
        // Ends when the blocking work returns and drops its sender.
        while let Some((stream, text)) = received.recv().await {
            output.line(OutputLine {
                stream,
                text: &text,
            });
        }
        let exit_code = join(task, &operation).await?;
        Ok(ExecResult { exit_code })
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<(), GuestError> {
        let operation = format!("upload {} to {remote}", local.display());
        let local = local.to_path_buf();
        let remote = remote.to_owned();
        let (task, _cancel) = self
            .spawn(move |slot, ctx| {
                let reused = slot.is_some();
                match upload::upload(ctx.ensure(slot)?, ctx, &local, &remote) {
                    // The upload writes a temporary file and renames it, so running it again
                    // on a new session is safe.
                    Err(error) if reused && error.is_transport() && !ctx.is_cancelled() => {
                        *slot = None;
                        upload::upload(ctx.ensure(slot)?, ctx, &local, &remote)
                    }
                    result => result,
                }
            })
            .await;
        join(task, &operation).await
    }

    async fn restart(&self, options: &RestartOptions) -> Result<(), GuestError> {
        let plan = restart::Plan::new(options);
        let operation = format!("restart with `{}`", abbreviate(&plan.command));
        let (task, _cancel) = self.spawn(move |slot, ctx| plan.run(slot, ctx)).await;
        join(task, &operation).await
    }
}

impl fmt::Debug for SshGuest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshGuest")
            .field("target", &self.target.address())
            .field("host_key", &self.target.host_key.fingerprint())
            .finish_non_exhaustive()
    }
}
