//! Build hosts: where build and validation VMs run.
//!
//! A [`BuildHost`] provisions a [`BuildVm`] from a base disk; the VM's [`Guest`] runs commands
//! and takes files; the VM is shut down, its disk captured once, and destroyed. Hosts live in
//! `imagebuilder-drivers` (mock, QEMU, libvirt); this module only defines what they promise.

mod error;
mod guest;
mod vm;

pub use error::{GuestError, HostError};
pub use guest::{
    ExecRequest, ExecResult, Guest, OutputLine, OutputSink, OutputStream, RestartOptions,
};
pub use vm::{
    BuildHost, BuildVm, Capabilities, CapturedDisk, ProvisionOptions, VmAccess, VmPurpose,
};
