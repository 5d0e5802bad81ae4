//! `WindowsRestart` (and the Linux `Restart` extension) and `WindowsUpdate`.

use async_trait::async_trait;

use super::{
    label, quote, run_checked, upload_text, CustomizeError, Customizer, StepContext, StepInfo,
};
use crate::host::{ExecRequest, Guest, RestartOptions};
use crate::template::model::{RestartStep, WindowsUpdateStep};

/// Runs a template's `WindowsRestart` step, or the Linux `Restart` extension: run the
/// restart command, wait for the guest to go and come back, run the check command, all
/// within the restart timeout.
#[derive(Debug, Clone)]
pub struct RestartCustomizer {
    kind: &'static str,
    step: RestartStep,
}

impl RestartCustomizer {
    /// The `WindowsRestart` customizer for `step`.
    pub fn windows(step: RestartStep) -> Self {
        Self {
            kind: "WindowsRestart",
            step,
        }
    }

    /// The Linux `Restart` customizer for `step`.
    pub fn linux(step: RestartStep) -> Self {
        Self {
            kind: "Restart",
            step,
        }
    }
}

#[async_trait]
impl Customizer for RestartCustomizer {
    fn info(&self) -> StepInfo {
        StepInfo {
            kind: self.kind.into(),
            name: self.step.name.clone(),
        }
    }

    fn restarts_guest(&self) -> bool {
        true
    }

    async fn run(&self, guest: &dyn Guest, cx: &StepContext<'_>) -> Result<(), CustomizeError> {
        let options = RestartOptions {
            command: self.step.restart_command.clone(),
            check_command: self.step.restart_check_command.clone(),
            timeout: self.step.restart_timeout.duration(),
        };
        guest
            .restart(&options)
            .await
            .map_err(|source| CustomizeError::Guest {
                step: label(self.kind, self.step.name.as_deref(), cx.index),
                source,
            })
    }
}

/// Runs a template's `WindowsUpdate` step through the Windows Update Agent API.
#[derive(Debug, Clone)]
pub struct WindowsUpdateCustomizer {
    step: WindowsUpdateStep,
}

impl WindowsUpdateCustomizer {
    /// The customizer for `step`.
    pub fn new(step: WindowsUpdateStep) -> Self {
        Self { step }
    }

    /// The PowerShell script: search with the criteria, keep updates that pass every
    /// `include:` filter and no `exclude:` filter, install at most the limit.
    fn script(&self) -> String {
        let mut filters = String::new();
        for filter in &self.step.filters {
            let (keep, expression) = match filter.split_once(':') {
                Some(("exclude", e)) => ("-not", e),
                Some(("include", e)) => ("", e),
                _ => ("", filter.as_str()),
            };
            filters.push_str(&format!(
                "$updates = @($updates | Where-Object {{ {keep} ({expression}) }})\r\n"
            ));
        }
        format!(
            "$ErrorActionPreference = 'Stop'\r\n\
             $session = New-Object -ComObject Microsoft.Update.Session\r\n\
             $updates = @($session.CreateUpdateSearcher().Search({criteria}).Updates)\r\n\
             {filters}\
             $updates = @($updates | Select-Object -First {limit})\r\n\
             if ($updates.Count -eq 0) {{ Write-Output 'No updates to install'; exit 0 }}\r\n\
             $collection = New-Object -ComObject Microsoft.Update.UpdateColl\r\n\
             foreach ($u in $updates) {{ Write-Output \"Installing $($u.Title)\"; [void]$collection.Add($u) }}\r\n\
             $downloader = $session.CreateUpdateDownloader(); $downloader.Updates = $collection; [void]$downloader.Download()\r\n\
             $installer = $session.CreateUpdateInstaller(); $installer.Updates = $collection\r\n\
             $result = $installer.Install()\r\n\
             Write-Output \"Result code $($result.ResultCode); reboot required: $($result.RebootRequired)\"\r\n\
             if ($result.ResultCode -ne 2) {{ exit 1 }}\r\n",
            criteria = quote::ps(self.step.effective_search_criteria()),
            limit = self.step.effective_update_limit(),
        )
    }
}

#[async_trait]
impl Customizer for WindowsUpdateCustomizer {
    fn info(&self) -> StepInfo {
        StepInfo {
            kind: "WindowsUpdate".into(),
            name: self.step.name.clone(),
        }
    }

    async fn run(&self, guest: &dyn Guest, cx: &StepContext<'_>) -> Result<(), CustomizeError> {
        let step = label("WindowsUpdate", self.step.name.as_deref(), cx.index);
        let remote = format!(r"C:\Windows\Temp\imagebuilder-step-{}.ps1", cx.index);
        upload_text(guest, cx, &step, &self.script(), &remote).await?;
        let command = ExecRequest::new(format!(
            "powershell.exe -NoProfile -ExecutionPolicy Bypass -File {}",
            quote::ps(&remote)
        ))
        .elevated();
        run_checked(guest, &command, cx, &step, &[0]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_script_applies_criteria_filters_and_limit() {
        let customizer = WindowsUpdateCustomizer::new(WindowsUpdateStep {
            name: None,
            search_criteria: String::new(),
            filters: vec![
                "exclude:$_.Title -like '*Preview*'".into(),
                "include:$true".into(),
            ],
            update_limit: 0,
        });
        let script = customizer.script();
        assert!(
            script.contains("Search('BrowseOnly=0 and IsInstalled=0')"),
            "{script}"
        );
        assert!(
            script.contains("Where-Object { -not ($_.Title -like '*Preview*') }"),
            "{script}"
        );
        assert!(script.contains("Where-Object {  ($true) }"), "{script}");
        assert!(script.contains("Select-Object -First 1000"), "{script}");
    }
}
