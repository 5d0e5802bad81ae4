//! What the VM hosts (QEMU, libvirt) share: host tools, the NoCloud seed with its pinned host
//! key, the serial console's tail, the end of a build VM (build user removed, power-off), the Azure size table, the base disk's local checks (never trusting its bytes), and the
//! build VM's isolated uplink (no way to the host's loopback).

pub(crate) mod accel;
pub(crate) mod command;
pub(crate) mod console;
pub(crate) mod disk;
pub(crate) mod inspect;
pub(crate) mod lease_file;
pub(crate) mod power;
pub(crate) mod seed;
pub(crate) mod sizes;
// Only the QEMU host runs it so far; libvirt starts QEMU itself and keeps its user network.
#[cfg(feature = "qemu")]
pub(crate) mod uplink;

use std::path::PathBuf;

use imagebuilder_core::host::HostError;

/// A free TCP port on 127.0.0.1. Another process may take it before the VM binds it; callers
/// retry with a new port when the forwarding fails.
pub(crate) fn free_port() -> Result<u16, HostError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| HostError::Failed {
        operation: "find a free port".into(),
        source: Box::new(e),
    })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| HostError::Failed {
            operation: "find a free port".into(),
            source: Box::new(e),
        })
}

/// The first of `names` that exists under Debian's OVMF folder, else the first name there.
pub(crate) fn ovmf_file(names: &[&str]) -> PathBuf {
    let dir = PathBuf::from("/usr/share/OVMF");
    names
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .unwrap_or_else(|| dir.join(names[0]))
}

/// The default OVMF code and variables template (4 MiB builds first, as Debian 12 ships).
pub(crate) fn default_ovmf() -> (PathBuf, PathBuf) {
    (
        ovmf_file(&["OVMF_CODE_4M.fd", "OVMF_CODE.fd"]),
        ovmf_file(&["OVMF_VARS_4M.fd", "OVMF_VARS.fd"]),
    )
}
