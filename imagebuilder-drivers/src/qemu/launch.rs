//! Building QEMU's command line and starting it; the network comes from the caller.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use imagebuilder_core::host::{HostError, OutputLine, OutputSink, OutputStream};
use imagebuilder_core::template::model::HyperVGeneration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::vmkit::accel::Accelerator;
use crate::vmkit::console::{clean, ConsoleTail};
use crate::vmkit::sizes::VmShape;

/// Everything one QEMU process needs.
pub(crate) struct Launch<'a> {
    pub(crate) qemu: &'a str,
    pub(crate) name: &'a str,
    pub(crate) accelerator: Accelerator,
    pub(crate) generation: HyperVGeneration,
    pub(crate) shape: VmShape,
    pub(crate) disk: &'a Path,
    pub(crate) seed: &'a Path,
    pub(crate) qmp_socket: &'a Path,
    /// OVMF code and this VM's copy of the vars, for Gen2.
    pub(crate) uefi: Option<(&'a Path, &'a Path)>,
    /// The `-netdev` value of the guest's NIC, with id `net0`.
    pub(crate) netdev: String,
    /// A program QEMU runs under (its path and leading arguments) and the descriptors QEMU
    /// inherits: the isolated network's namespace ([`crate::vmkit::uplink::Uplink::wrap`]).
    pub(crate) wrap: Option<(String, Vec<String>, Vec<std::os::fd::RawFd>)>,
}

impl Launch<'_> {
    fn args(&self) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        let (machine, accel) = match self.accelerator {
            Accelerator::Kvm => ("kvm", "kvm".to_owned()),
            Accelerator::Tcg | Accelerator::Auto => ("tcg", "tcg,thread=multi".to_owned()),
        };
        let machine_type = match self.generation {
            HyperVGeneration::V1 => "pc",
            HyperVGeneration::V2 => "q35",
        };
        let mut args = vec![
            "-name".into(),
            self.name.into(),
            "-machine".into(),
            machine_type.into(),
            "-accel".into(),
            accel,
            "-cpu".into(),
            if machine == "kvm" {
                "host".into()
            } else {
                "max".into()
            },
            "-smp".into(),
            self.shape.cpus.to_string(),
            "-m".into(),
            format!("{}M", self.shape.memory_mib),
            "-nodefaults".into(),
            "-display".into(),
            "none".into(),
            "-monitor".into(),
            "none".into(),
            "-serial".into(),
            "stdio".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", path(self.qmp_socket)),
            "-drive".into(),
            format!(
                "{},format=qcow2,cache=writeback,discard=unmap",
                disk_marker(self.disk)
            ),
            "-drive".into(),
            format!("file={},if=virtio,format=raw,readonly=on", path(self.seed)),
            "-netdev".into(),
            self.netdev.clone(),
            "-device".into(),
            "virtio-net-pci,netdev=net0".into(),
            // Guests generate keys and seed TLS at boot; without entropy TCG boots stall.
            "-device".into(),
            "virtio-rng-pci".into(),
        ];
        if let Some((code, vars)) = self.uefi {
            args.push("-drive".into());
            args.push(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                path(code)
            ));
            args.push("-drive".into());
            args.push(format!("if=pflash,format=raw,unit=1,file={}", path(vars)));
        }
        args
    }
}

/// QEMU's own user network with SSH forwarded from `ssh_port` on 127.0.0.1: the guest can
/// reach the host's loopback through it (see [`crate::vmkit::uplink`]).
pub(crate) fn host_reachable_netdev(ssh_port: u16) -> String {
    format!("user,id=net0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22")
}

/// The start of the overlay's `-drive` value: on the command line of this VM's QEMU only
/// (each VM has its own overlay), so a crash recovery can tell its QEMU from a reused pid.
pub(crate) fn disk_marker(disk: &Path) -> String {
    format!("file={},if=virtio", disk.display())
}

/// Starts QEMU; console lines go to `console` and `tail` as they come.
pub(crate) fn spawn(
    launch: &Launch<'_>,
    console: Arc<dyn OutputSink>,
    tail: ConsoleTail,
    stderr_log: &Path,
) -> Result<Child, HostError> {
    let stderr = std::fs::File::create(stderr_log).map_err(|e| HostError::Failed {
        operation: format!("create {}", stderr_log.display()),
        source: Box::new(e),
    })?;
    let mut command = match &launch.wrap {
        Some((program, prefix, fds)) => {
            let mut command = Command::new(program);
            command.args(prefix);
            // SAFETY: the hook only calls fcntl, which is async-signal-safe.
            unsafe { command.pre_exec(crate::vmkit::uplink::inherit_fds(fds.clone())) };
            command
        }
        None => Command::new(launch.qemu),
    };
    let mut child = command
        .args(launch.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        // Dropping the handle without destroy() must not leave QEMU running.
        .kill_on_drop(true)
        // Its own process group: a Ctrl-C at the terminal reaches the CLI, which cancels the
        // run and shuts the VM down in order, instead of killing QEMU under it.
        .process_group(0)
        .spawn()
        .map_err(|e| HostError::Failed {
            operation: format!("start {}", launch.qemu),
            source: Box::new(e),
        })?;
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = clean(&line);
                tail.push(&line);
                console.line(OutputLine {
                    stream: OutputStream::Stdout,
                    text: &line,
                });
            }
        });
    }
    Ok(child)
}

/// The per-VM copy of the OVMF vars (UEFI variables are written at boot).
pub(crate) fn uefi_vars_copy(vars_template: &Path, dir: &Path) -> Result<PathBuf, HostError> {
    let copy = dir.join("OVMF_VARS.fd");
    std::fs::copy(vars_template, &copy).map_err(|e| HostError::Failed {
        operation: format!("copy {}", vars_template.display()),
        source: Box::new(e),
    })?;
    Ok(copy)
}
