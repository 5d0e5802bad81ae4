//! AIB's hidden last step: generalize the image so every VM made from it starts fresh.
//! A customizer that writes `/tmp/DeprovisioningScript.sh` (Linux) or
//! `c:\DeprovisioningScript.ps1` (Windows) replaces the default, as with AIB.

use async_trait::async_trait;

use super::{run_checked, CustomizeError, Customizer, StepContext, StepInfo};
use crate::host::{ExecRequest, Guest};
use crate::template::model::OsType;

/// Default Linux generalization: what `waagent -deprovision+user` does for a cloud image,
/// without needing the Azure agent. cloud-init may still be running its later stages (SSH
/// answers after its first), and one that runs after the clean makes a new instance in the
/// image, so the clean waits for it to finish first (bounded; an image without cloud-init
/// goes on at once).
const LINUX_DEFAULT: &str = "\
sudo timeout 600 cloud-init status --wait >/dev/null 2>&1; \
sudo cloud-init clean --logs --seed 2>/dev/null || sudo rm -rf /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/data; \
sudo rm -f /etc/ssh/ssh_host_*; \
sudo truncate -s 0 /etc/machine-id; sudo rm -f /var/lib/dbus/machine-id; \
sudo rm -f /root/.bash_history; rm -f ~/.bash_history ~/.ssh/authorized_keys; \
export HISTSIZE=0; sync";

/// Default Windows generalization: sysprep, then wait for the generalized state.
const WINDOWS_DEFAULT: &str = "\
& $env:SystemRoot\\System32\\Sysprep\\Sysprep.exe /oobe /generalize /quiet /quit; \
while ($true) { $s = (Get-ItemProperty HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State).ImageState; \
if ($s -eq 'IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE') { break }; Start-Sleep -Seconds 10 }";

/// The generalize step.
#[derive(Debug, Clone, Copy)]
pub struct Generalize;

impl Generalize {
    /// The Linux override AIB documents.
    pub const LINUX_OVERRIDE: &'static str = "/tmp/DeprovisioningScript.sh";
    /// The Windows override AIB documents.
    pub const WINDOWS_OVERRIDE: &'static str = r"c:\DeprovisioningScript.ps1";
}

#[async_trait]
impl Customizer for Generalize {
    fn info(&self) -> StepInfo {
        StepInfo {
            kind: "Generalize".into(),
            name: None,
        }
    }

    async fn run(&self, guest: &dyn Guest, cx: &StepContext<'_>) -> Result<(), CustomizeError> {
        let step = "Generalize";
        let (has_override, run_override, default) = match cx.os_type {
            OsType::Linux => (
                format!("test -f {}", Self::LINUX_OVERRIDE),
                ExecRequest::new(format!("sudo sh {}", Self::LINUX_OVERRIDE)),
                ExecRequest::new(LINUX_DEFAULT),
            ),
            OsType::Windows => (
                format!(
                    "if (Test-Path {}) {{ exit 0 }} else {{ exit 1 }}",
                    Self::WINDOWS_OVERRIDE
                ),
                ExecRequest::new(format!(
                    "powershell.exe -NoProfile -ExecutionPolicy Bypass -File {}",
                    Self::WINDOWS_OVERRIDE
                ))
                .elevated(),
                ExecRequest::new(WINDOWS_DEFAULT).elevated(),
            ),
        };
        let found = guest
            .exec(&ExecRequest::new(has_override), cx.output)
            .await
            .map_err(|source| CustomizeError::Guest {
                step: step.into(),
                source,
            })?;
        let command = if found.success() {
            run_override
        } else {
            default
        };
        run_checked(guest, &command, cx, step, &[0]).await
    }
}
