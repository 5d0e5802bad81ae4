//! `properties.customize[]` and the step types shared with `validate.inVMValidations[]`.

use serde::Serialize;

use crate::template::rules::DurationText;

/// One customization step (`properties.customize[i]`, discriminated by `type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum CustomizerSpec {
    /// Runs a shell script on a Linux guest as the non-root build user.
    Shell(ShellStep),
    /// Runs a PowerShell script on a Windows guest.
    PowerShell(PowerShellStep),
    /// Downloads one file into the guest.
    File(FileStep),
    /// Restarts a Windows guest and waits for it.
    WindowsRestart(RestartStep),
    /// Extension of this library: restarts a Linux guest and waits for it (AIB has no Linux
    /// restart customizer; its users asked for one).
    Restart(RestartStep),
    /// Installs Windows updates.
    WindowsUpdate(WindowsUpdateStep),
}

/// Where a script comes from: exactly one of `scriptUri` or `inline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Script {
    /// A script fetched from a URL.
    ScriptUri(String),
    /// Commands written in the template, run in order.
    Inline(Vec<String>),
}

impl Script {
    /// The text a `sensitive` step keeps secret: its commands, or its URL.
    pub fn secret_texts(&self) -> Vec<String> {
        match self {
            Self::ScriptUri(uri) => vec![uri.clone()],
            Self::Inline(lines) => lines.clone(),
        }
    }
}

/// `Shell` customizer or validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShellStep {
    /// Friendly name of the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The script to run.
    #[serde(flatten)]
    pub script: Script,
    /// sha256 of the script at `scriptUri`, 64 hex digits; empty means unchecked.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sha256_checksum: String,
    /// Extension: the script text (each inline command, or the `scriptUri`) is a secret,
    /// scrubbed from the run's log, events and report like a secure deployment parameter.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// `PowerShell` customizer or validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PowerShellStep {
    /// Friendly name of the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The script to run.
    #[serde(flatten)]
    pub script: Script,
    /// sha256 of the script at `scriptUri`, 64 hex digits; empty means unchecked.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sha256_checksum: String,
    /// Extension: the script text (each inline command, or the `scriptUri`) is a secret,
    /// scrubbed from the run's log, events and report like a secure deployment parameter.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    /// Run with elevated privileges (default false).
    pub run_elevated: bool,
    /// Run as the SYSTEM account; only valid with `runElevated` (default false).
    pub run_as_system: bool,
    /// Exit codes that count as success (default `[0]`).
    pub valid_exit_codes: Vec<i64>,
}

/// `File` customizer or validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileStep {
    /// Friendly name of the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// URL of the file to download.
    pub source_uri: String,
    /// Absolute path in the guest; its parent directory must exist.
    pub destination: String,
    /// sha256 of the file, 64 hex digits; empty means unchecked.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sha256_checksum: String,
}

/// `WindowsRestart` customizer, and the `Restart` extension for Linux with the same fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartStep {
    /// Friendly name of the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Command that restarts the guest.
    pub restart_command: String,
    /// Command whose success means the guest is back; empty means none.
    pub restart_check_command: String,
    /// How long to wait for the guest to come back, such as `5m` or `2h`.
    pub restart_timeout: DurationText,
}

impl RestartStep {
    /// AIB's default restart command for `WindowsRestart`.
    pub const DEFAULT_RESTART_COMMAND: &'static str = r#"shutdown /r /f /t 0 /c "packer restart""#;
    /// The default restart command for the Linux `Restart` extension.
    pub const DEFAULT_LINUX_RESTART_COMMAND: &'static str = "sudo reboot";
    /// AIB's default restart timeout.
    pub const DEFAULT_RESTART_TIMEOUT: &'static str = "5m";
}

/// `WindowsUpdate` customizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsUpdateStep {
    /// Friendly name of the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Windows Update search criteria; empty means AIB's default.
    pub search_criteria: String,
    /// `include:`/`exclude:` PowerShell filter expressions.
    pub filters: Vec<String>,
    /// Maximum updates to install; 0 means AIB's default of 1000.
    pub update_limit: u32,
}

impl WindowsUpdateStep {
    /// The search criteria used when `searchCriteria` is empty.
    pub const DEFAULT_SEARCH_CRITERIA: &'static str = "BrowseOnly=0 and IsInstalled=0";
    /// The limit used when `updateLimit` is 0.
    pub const DEFAULT_UPDATE_LIMIT: u32 = 1000;

    /// The search criteria that will be used.
    pub fn effective_search_criteria(&self) -> &str {
        if self.search_criteria.is_empty() {
            Self::DEFAULT_SEARCH_CRITERIA
        } else {
            &self.search_criteria
        }
    }

    /// The update limit that will be used.
    pub fn effective_update_limit(&self) -> u32 {
        if self.update_limit == 0 {
            Self::DEFAULT_UPDATE_LIMIT
        } else {
            self.update_limit
        }
    }
}
