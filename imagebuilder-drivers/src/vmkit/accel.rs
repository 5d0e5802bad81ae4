//! Choosing the accelerator: KVM only when it really works (on these machines /dev/kvm exists
//! but hangs), else multi-threaded TCG.

use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// Which accelerator the VM hosts use (for libvirt: domain type `kvm` or `qemu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    /// KVM when the probe says it works, else TCG.
    Auto,
    /// KVM, without probing.
    Kvm,
    /// Software emulation (multi-threaded TCG).
    Tcg,
}

/// How long the KVM probe may take before KVM counts as unusable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves `Auto` once per process.
pub(crate) async fn resolve(requested: Accelerator, qemu: &str) -> Accelerator {
    match requested {
        Accelerator::Kvm | Accelerator::Tcg => requested,
        Accelerator::Auto => {
            static CHOICE: OnceLock<Accelerator> = OnceLock::new();
            if let Some(choice) = CHOICE.get() {
                return *choice;
            }
            let choice = if kvm_usable(qemu).await {
                Accelerator::Kvm
            } else {
                Accelerator::Tcg
            };
            *CHOICE.get_or_init(|| choice)
        }
    }
}

/// The CPU must advertise virtualization and a bounded QEMU start with KVM must finish.
async fn kvm_usable(qemu: &str) -> bool {
    let cpu_flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has_vt = cpu_flags
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    if !has_vt || std::fs::File::open("/dev/kvm").is_err() {
        return false;
    }
    let Ok(mut child) = tokio::process::Command::new(qemu)
        .args([
            "-accel",
            "kvm",
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-monitor",
            "none",
            "-qmp",
            "stdio",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin
            .write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n")
            .await;
    }
    match tokio::time::timeout(PROBE_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) => status.success(),
        _ => {
            let _ = child.kill().await;
            false
        }
    }
}
