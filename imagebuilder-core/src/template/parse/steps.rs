//! `properties.customize[]` and `properties.validate.inVMValidations[]`: the two lists share
//! their step types and differ in which types they allow and which codes they report.

use serde_json::Value;

use super::reader::{Cx, Fields};
use super::{read_kind, sha256_field};
use crate::template::diagnostics::{ErrorCode, Path};
use crate::template::model::{
    CustomizerSpec, FileStep, OsType, PowerShellStep, RestartStep, Script, ShellStep,
    ValidatorSpec, WindowsUpdateStep,
};
use crate::template::rules::DurationText;
use crate::template::ApiVersion;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Shell,
    PowerShell,
    File,
    WindowsRestart,
    WindowsUpdate,
    Restart,
}

const KINDS: &[(&str, Kind)] = &[
    ("Shell", Kind::Shell),
    ("PowerShell", Kind::PowerShell),
    ("File", Kind::File),
    ("WindowsRestart", Kind::WindowsRestart),
    ("WindowsUpdate", Kind::WindowsUpdate),
    ("Restart", Kind::Restart),
];

/// The codes one list reports.
struct Codes {
    /// Unknown or missing type, and bad field values.
    bad: ErrorCode,
    /// Neither or both of scriptUri and inline.
    no_script: ErrorCode,
}

const CUSTOMIZER: Codes = Codes {
    bad: ErrorCode::BadCustomizerType,
    no_script: ErrorCode::NoCustomizerScript,
};

const VALIDATOR: Codes = Codes {
    bad: ErrorCode::BadValidatorType,
    no_script: ErrorCode::NoValidatorScript,
};

pub(super) fn customizer(cx: &mut Cx<'_>, value: &Value, path: Path) -> Option<CustomizerSpec> {
    let mut f = Fields::of(cx, value, path, CUSTOMIZER.bad)?;
    let kind = read_kind(cx, &mut f, KINDS, "customizer type")?;
    let step = match kind {
        Kind::Shell => CustomizerSpec::Shell(shell(cx, &mut f, &CUSTOMIZER)),
        Kind::PowerShell => CustomizerSpec::PowerShell(powershell(cx, &mut f, &CUSTOMIZER)),
        Kind::File => CustomizerSpec::File(file(cx, &mut f)),
        Kind::WindowsRestart => CustomizerSpec::WindowsRestart(restart(
            cx,
            &mut f,
            RestartStep::DEFAULT_RESTART_COMMAND,
        )),
        Kind::Restart => CustomizerSpec::Restart(restart(
            cx,
            &mut f,
            RestartStep::DEFAULT_LINUX_RESTART_COMMAND,
        )),
        Kind::WindowsUpdate => CustomizerSpec::WindowsUpdate(windows_update(cx, &mut f)),
    };
    f.finish(cx);
    Some(step)
}

pub(super) fn validator(cx: &mut Cx<'_>, value: &Value, path: Path) -> Option<ValidatorSpec> {
    let mut f = Fields::of(cx, value, path, VALIDATOR.bad)?;
    let kind = read_kind(cx, &mut f, KINDS, "validator type")?;
    let step = match kind {
        Kind::Shell => ValidatorSpec::Shell(shell(cx, &mut f, &VALIDATOR)),
        Kind::PowerShell => ValidatorSpec::PowerShell(powershell(cx, &mut f, &VALIDATOR)),
        Kind::File => {
            if cx.version < ApiVersion::V2022_07_01 {
                cx.warning(
                    &f.at("type"),
                    ErrorCode::UnsupportedValidatorType,
                    format!(
                        "the File validator needs api-version 2022-07-01 or later; this document uses {}",
                        cx.version
                    ),
                );
            }
            ValidatorSpec::File(file(cx, &mut f))
        }
        Kind::WindowsRestart | Kind::WindowsUpdate | Kind::Restart => {
            let name = KINDS
                .iter()
                .find(|(_, k)| *k == kind)
                .map_or("", |(n, _)| n);
            cx.error(
                &f.at("type"),
                ErrorCode::UnsupportedValidatorType,
                format!("'{name}' is a customizer, not a validator; validators are 'Shell', 'PowerShell' and 'File'"),
            );
            return None;
        }
    };
    f.finish(cx);
    Some(step)
}

/// Refuses a step for the other operating system than the source's: AIB's
/// UnsupportedCustomizerType.
pub(super) fn check_os(cx: &mut Cx<'_>, path: &Path, step: &CustomizerSpec, os: OsType) {
    let (kind, needs) = match step {
        CustomizerSpec::Shell(_) => ("Shell", OsType::Linux),
        CustomizerSpec::Restart(_) => ("Restart", OsType::Linux),
        CustomizerSpec::PowerShell(_) => ("PowerShell", OsType::Windows),
        CustomizerSpec::WindowsRestart(_) => ("WindowsRestart", OsType::Windows),
        CustomizerSpec::WindowsUpdate(_) => ("WindowsUpdate", OsType::Windows),
        CustomizerSpec::File(_) => return,
    };
    if os != needs {
        cx.error(
            &path.field("type"),
            ErrorCode::UnsupportedCustomizerType,
            format!("'{kind}' runs on {needs} guests; the source's osType is {os}"),
        );
    }
}

fn name(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> Option<String> {
    f.str_opt(cx, "name")
}

/// Exactly one of `scriptUri` and `inline`; an empty `inline` counts as absent.
fn script(cx: &mut Cx<'_>, f: &mut Fields<'_>, codes: &Codes) -> Script {
    let uri = f.str_opt(cx, "scriptUri").filter(|s| !s.trim().is_empty());
    let inline = f
        .string_list(cx, "inline")
        .filter(|lines| !lines.is_empty());
    match (uri, inline) {
        (Some(uri), None) => Script::ScriptUri(uri),
        (None, Some(lines)) => Script::Inline(lines),
        (Some(uri), Some(_)) => {
            cx.error(
                f.path(),
                codes.no_script,
                "give exactly one of 'scriptUri' and 'inline', not both",
            );
            Script::ScriptUri(uri)
        }
        (None, None) => {
            cx.error(
                f.path(),
                codes.no_script,
                "a script is required: give 'scriptUri' (a URL) or 'inline' (a non-empty list of commands)",
            );
            Script::Inline(Vec::new())
        }
    }
}

fn shell(cx: &mut Cx<'_>, f: &mut Fields<'_>, codes: &Codes) -> ShellStep {
    ShellStep {
        name: name(cx, f),
        script: script(cx, f, codes),
        sha256_checksum: sha256_field(cx, f),
        sensitive: f.bool_or(cx, "sensitive", false),
    }
}

fn powershell(cx: &mut Cx<'_>, f: &mut Fields<'_>, codes: &Codes) -> PowerShellStep {
    let name = name(cx, f);
    let script = script(cx, f, codes);
    let sha256_checksum = sha256_field(cx, f);
    let sensitive = f.bool_or(cx, "sensitive", false);
    let run_elevated = f.bool_or(cx, "runElevated", false);
    let run_as_system = f.bool_or(cx, "runAsSystem", false);
    if run_as_system && !run_elevated {
        cx.error(
            &f.at("runAsSystem"),
            codes.bad,
            "runAsSystem is only valid with runElevated set to true",
        );
    }
    let valid_exit_codes = exit_codes(cx, f);
    PowerShellStep {
        name,
        script,
        sha256_checksum,
        sensitive,
        run_elevated,
        run_as_system,
        valid_exit_codes,
    }
}

fn exit_codes(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> Vec<i64> {
    let Some(items) = f.array(cx, "validExitCodes") else {
        return vec![0];
    };
    let mut codes = Vec::with_capacity(items.len());
    for (path, value) in items {
        match value.as_i64() {
            Some(code) => codes.push(code),
            None => cx.error(&path, f.code(), "expected an integer exit code"),
        }
    }
    if codes.is_empty() {
        vec![0]
    } else {
        codes
    }
}

fn file(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> FileStep {
    let name = name(cx, f);
    let source_uri = f.str_req(cx, "sourceUri", "sourceUri (the URL of the file)");
    let destination = f.str_req(
        cx,
        "destination",
        "destination (an absolute path in the VM)",
    );
    if !destination.is_empty() && !is_absolute_guest_path(&destination) {
        cx.error(
            &f.at("destination"),
            f.code(),
            format!("'{destination}' is not an absolute path; expected e.g. '/tmp/file' or 'c:\\buildArtifacts\\file'"),
        );
    }
    FileStep {
        name,
        source_uri,
        destination,
        sha256_checksum: sha256_field(cx, f),
    }
}

/// `/...` for Linux guests, `C:\...` or `C:/...` for Windows guests.
fn is_absolute_guest_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    path.starts_with('/')
        || (bytes.len() >= 3
            && bytes[0].is_ascii_alphabetic()
            && bytes[1] == b':'
            && matches!(bytes[2], b'\\' | b'/'))
}

/// `WindowsRestart` and the Linux `Restart` extension, which differ only in the default command.
fn restart(cx: &mut Cx<'_>, f: &mut Fields<'_>, default_command: &str) -> RestartStep {
    let name = name(cx, f);
    let restart_command = f
        .str_opt(cx, "restartCommand")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default_command.to_owned());
    let restart_check_command = f.str_or_empty(cx, "restartCheckCommand");
    let default_timeout = || {
        DurationText::parse(RestartStep::DEFAULT_RESTART_TIMEOUT)
            .expect("the default restart timeout is a valid duration")
    };
    let restart_timeout = match f.str_opt(cx, "restartTimeout").filter(|s| !s.is_empty()) {
        None => default_timeout(),
        Some(text) => DurationText::parse(&text).unwrap_or_else(|e| {
            cx.error(&f.at("restartTimeout"), f.code(), e.to_string());
            default_timeout()
        }),
    };
    RestartStep {
        name,
        restart_command,
        restart_check_command,
        restart_timeout,
    }
}

fn windows_update(cx: &mut Cx<'_>, f: &mut Fields<'_>) -> WindowsUpdateStep {
    WindowsUpdateStep {
        name: name(cx, f),
        search_criteria: f.str_or_empty(cx, "searchCriteria"),
        filters: f.string_list(cx, "filters").unwrap_or_default(),
        update_limit: f.u32_or(cx, "updateLimit", 0),
    }
}
