//! Running the host tools QEMU builds need (qemu-img, ssh-keygen, mkfs.vfat, mcopy).

use std::ffi::OsStr;
use std::process::Stdio;

use imagebuilder_core::host::HostError;

/// Runs `program args...`, returning stdout; a failure says what was being done and shows
/// the tool's stderr.
pub(crate) async fn run<I, S>(operation: &str, program: &str, args: I) -> Result<String, HostError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| HostError::Failed {
            operation: format!("{operation} (running {program})"),
            source: Box::new(e),
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(HostError::failed(
            operation,
            format!(
                "{program} {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ))
    }
}
