//! Restarting the guest: run the command, see the old session die, reconnect, check.

use std::time::{Duration, Instant};

use imagebuilder_core::host::RestartOptions;

use super::connection::{Connection, Context};
use super::error::SshError;
use super::guest::channel_on;
use super::{exec, DEFAULT_RESTART_COMMAND, IO_TIMEOUT};

/// Pause between checks that the guest went down, and the first pause between check-command
/// runs (doubled up to the cap).
const POLL_START: Duration = Duration::from_millis(200);
const POLL_CAP: Duration = Duration::from_secs(2);

/// Output lines of the restart command kept for the error when it fails.
const KEPT_LINES: usize = 20;

/// A restart as asked, with the default command filled in.
pub(crate) struct Plan {
    pub(crate) command: String,
    check: String,
    timeout: Duration,
}

impl Plan {
    pub(crate) fn new(options: &RestartOptions) -> Self {
        let command = options.command.trim();
        Self {
            command: if command.is_empty() {
                DEFAULT_RESTART_COMMAND.to_owned()
            } else {
                command.to_owned()
            },
            check: options.check_command.trim().to_owned(),
            timeout: options.timeout,
        }
    }

    /// Every step shares one deadline, `timeout` from now.
    pub(crate) fn run(self, slot: &mut Option<Connection>, ctx: &Context) -> Result<(), SshError> {
        let deadline = Instant::now() + self.timeout;
        self.issue(slot, ctx, deadline)?;
        self.wait_until_gone(slot, ctx, deadline)?;
        self.wait_until_back(slot, ctx, deadline)
    }

    /// Runs the restart command. The connection dropping, or the command dying of a signal,
    /// is what a restart looks like; a plain non-zero exit means it did not restart.
    fn issue(
        &self,
        slot: &mut Option<Connection>,
        ctx: &Context,
        deadline: Instant,
    ) -> Result<(), SshError> {
        if slot.is_none() {
            *slot = Some(self.reconnect(ctx, deadline, "answer SSH before the restart")?);
        }
        let mut kept = Vec::new();
        let mut keep = |_, line: String| {
            if kept.len() == KEPT_LINES {
                kept.remove(0);
            }
            kept.push(line);
            true
        };
        let ran = channel_on(slot, ctx).and_then(|(connection, channel)| {
            exec::run_on(
                connection,
                ctx,
                channel,
                &self.command,
                &mut keep,
                Some(deadline),
            )
        });
        match ran {
            Ok(code) if code == 0 || (129..255).contains(&code) => Ok(()),
            Ok(code) => Err(SshError::Refused(format!(
                "the command exited with code {code}: {}",
                kept.join("\n")
            ))),
            Err(SshError::Deadline { .. }) => Err(SshError::Deadline {
                what: format!("finish the restart command `{}`", self.command),
                after: self.timeout,
                last: None,
            }),
            Err(error) if error.is_transport() && !matches!(error, SshError::Cancelled) => {
                tracing::debug!("the connection dropped during the restart command, as expected");
                *slot = None;
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Waits until the old session stops answering, so that the check runs on the restarted
    /// guest and not on the one still shutting down.
    fn wait_until_gone(
        &self,
        slot: &mut Option<Connection>,
        ctx: &Context,
        deadline: Instant,
    ) -> Result<(), SshError> {
        while let Some(connection) = slot.as_ref() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(SshError::Deadline {
                    what: format!("go down after `{}`", self.command),
                    after: self.timeout,
                    last: None,
                });
            }
            if !connection.is_alive(remaining.min(IO_TIMEOUT)) {
                tracing::debug!("the guest went down");
                *slot = None;
                break;
            }
            ctx.sleep_until((Instant::now() + POLL_START).min(deadline))?;
        }
        Ok(())
    }

    /// Reconnects and runs the check command until it passes.
    fn wait_until_back(
        &self,
        slot: &mut Option<Connection>,
        ctx: &Context,
        deadline: Instant,
    ) -> Result<(), SshError> {
        let what = if self.check.is_empty() {
            format!("come back after `{}`", self.command)
        } else {
            format!(
                "come back and pass `{}` after `{}`",
                self.check, self.command
            )
        };
        let mut last: Option<SshError> = None;
        let mut pause = POLL_START;
        loop {
            if slot.is_none() {
                *slot = Some(self.reconnect(ctx, deadline, &what)?);
            }
            if self.check.is_empty() {
                return Ok(());
            }
            let ran = channel_on(slot, ctx).and_then(|(connection, channel)| {
                exec::run_on(
                    connection,
                    ctx,
                    channel,
                    &self.check,
                    &mut |_, _| true,
                    Some(deadline),
                )
            });
            match ran {
                Ok(0) => return Ok(()),
                Ok(code) => {
                    last = Some(SshError::Refused(format!(
                        "`{}` exited with code {code}",
                        self.check
                    )));
                }
                Err(SshError::Deadline { .. }) => {}
                Err(error) if error.is_transport() && !matches!(error, SshError::Cancelled) => {
                    *slot = None;
                    last = Some(error);
                }
                Err(error) => return Err(error),
            }
            ctx.sleep_until((Instant::now() + pause).min(deadline))?;
            pause = (pause * 2).min(POLL_CAP);
            if Instant::now() >= deadline {
                return Err(SshError::Deadline {
                    what,
                    after: self.timeout,
                    last: last.map(Box::new),
                });
            }
        }
    }

    /// A new session within what is left of the deadline; a timeout is reported as `what`.
    fn reconnect(
        &self,
        ctx: &Context,
        deadline: Instant,
        what: &str,
    ) -> Result<Connection, SshError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        ctx.connect_until(deadline, remaining)
            .map_err(|error| match error {
                SshError::Deadline { last, .. } => SshError::Deadline {
                    what: what.to_owned(),
                    after: self.timeout,
                    last,
                },
                other => other,
            })
    }
}
