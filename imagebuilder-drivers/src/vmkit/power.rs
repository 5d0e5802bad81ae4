//! The end of a build VM, shared by the VM hosts: the build user the host made is removed,
//! then the guest powers itself off; when it does not, ACPI power-down, then a forced stop.
//!
//! The build user goes in the same root shell that powers the guest off: once the account is
//! gone, `sudo` no longer works for the session that asked, so nothing could follow it.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use imagebuilder_core::host::{ExecRequest, Guest, GuestError, HostError, OutputLine};

use super::console::ConsoleTail;

/// How long the guest has to stop after the ACPI power button before it is stopped by force.
const ACPI_GRACE: Duration = Duration::from_secs(30);

/// Printed by the guest once the build user is gone; only then does the power-off follow.
const REMOVED: &str = "imagebuilder: build user removed";

/// What the escalation needs of a host's VM handle.
#[async_trait]
pub(crate) trait PowerSwitch: Send {
    /// Waits up to `limit` for the VM to stop; true when it did.
    async fn stopped_within(&mut self, limit: Duration) -> Result<bool, HostError>;
    /// Presses the VM's ACPI power button.
    async fn press_power_button(&mut self) -> Result<(), HostError>;
    /// Stops the VM at once (the guest's disks may be inconsistent).
    async fn force_stop(&mut self) -> Result<(), HostError>;
}

/// What one power-off needs: the VM, its guest, the build user to remove.
pub(crate) struct PowerOff<'a> {
    /// The VM's id, for messages.
    pub(crate) vm_id: &'a str,
    /// The build VM's guest, reached as `build_user`.
    pub(crate) guest: &'a dyn Guest,
    /// The account the host's seed created for the build.
    pub(crate) build_user: &'a str,
    /// How long the guest has to power itself off.
    pub(crate) timeout: Duration,
    /// The serial console, for the message when nothing stops the VM.
    pub(crate) tail: &'a ConsoleTail,
}

impl PowerOff<'_> {
    /// Removes the build user and powers the guest off; escalates when it does not stop.
    ///
    /// # Errors
    /// [`HostError::Failed`] when the build user could not be removed (the guest keeps
    /// running, to be destroyed), [`HostError::Timeout`] when nothing stopped the VM in time.
    pub(crate) async fn run(&self, switch: &mut dyn PowerSwitch) -> Result<(), HostError> {
        let lines = Mutex::new(Vec::new());
        let sink = |line: OutputLine<'_>| {
            lines
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(line.text.to_owned())
        };
        let request =
            ExecRequest::new(remove_build_user_then_power_off(self.build_user)).elevated();
        // The connection drops as the guest goes down; that is expected once the user is gone.
        let result = self.guest.exec(&request, &sink).await;
        let lines = lines
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !lines.iter().any(|l| l.trim() == REMOVED) {
            return Err(removal_failed(self.build_user, &lines, result));
        }
        if switch.stopped_within(self.timeout).await? {
            return Ok(());
        }
        tracing::warn!(
            "{}: no power-off after {:?}; sending ACPI power-down",
            self.vm_id,
            self.timeout
        );
        switch.press_power_button().await?;
        if switch.stopped_within(ACPI_GRACE).await? {
            return Ok(());
        }
        switch.force_stop().await?;
        Err(HostError::Timeout {
            operation: format!(
                "power off {} (the disk may be inconsistent; last console lines:{})",
                self.vm_id,
                self.tail.text()
            ),
            after: self.timeout,
        })
    }
}

fn removal_failed(
    user: &str,
    lines: &[String],
    result: Result<imagebuilder_core::host::ExecResult, GuestError>,
) -> HostError {
    let outcome = match result {
        Ok(r) => format!("exit code {}", r.exit_code),
        Err(e) => imagebuilder_core::error_chain(&e),
    };
    let output = lines.join("\n  | ");
    HostError::failed(
        format!("remove the build user '{user}' before capture"),
        format!("the guest did not confirm it ({outcome}); output:\n  | {output}"),
    )
}

/// The script, for a root shell, that removes `user` (account, group, home, sudo rules), checks that
/// nothing of it is left, says so, and powers the guest off. `user` is a checked user name
/// (the seed refuses any other), quoted all the same.
pub(crate) fn remove_build_user_then_power_off(user: &str) -> String {
    let user = crate::ssh::shell_quote(user);
    format!(
        "set -u; u={user}; \
         home=$(awk -F: -v u=\"$u\" '$1 == u {{ print $6 }}' /etc/passwd); \
         userdel -f -r \"$u\" || exit 1; \
         for f in /etc/sudoers.d/*; do \
           [ -f \"$f\" ] || continue; \
           sed -i -e \"/^$u[[:space:]]/d\" -e \"/^# User rules for $u\\$/d\" \"$f\" || exit 1; \
           grep -v -e '^[[:space:]]*$' -e '^[[:space:]]*#' \"$f\" | grep -q . || rm -f \"$f\"; \
         done; \
         if grep -q \"^$u:\" /etc/passwd /etc/shadow /etc/group; then echo \"$u is still in /etc\"; exit 1; fi; \
         if [ -n \"$home\" ] && [ \"$home\" != / ] && [ -e \"$home\" ]; then echo \"$home is still there\"; exit 1; fi; \
         if grep -rqs \"^$u[[:space:]]\" /etc/sudoers /etc/sudoers.d; then echo \"$u still has sudo rules\"; exit 1; fi; \
         echo '{REMOVED}'; sync; poweroff"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_is_quoted_and_the_power_off_follows_the_confirmation() {
        let command = remove_build_user_then_power_off("imagebuilder");
        assert!(
            command.starts_with("set -u; u='imagebuilder'; "),
            "{command}"
        );
        let confirm = command.find(REMOVED).expect("confirmation");
        let power_off = command.rfind("poweroff").expect("power-off");
        let userdel = command.find("userdel -f -r").expect("userdel");
        assert!(userdel < confirm && confirm < power_off, "{command}");
    }
}
