#![doc = include_str!("../README.md")]

#[cfg(feature = "mock")]
pub mod mock;

#[cfg(feature = "ssh")]
pub mod ssh;

#[cfg(any(feature = "qemu", feature = "libvirt"))]
mod vmkit;

#[cfg(feature = "qemu")]
pub mod qemu;

#[cfg(feature = "libvirt")]
pub mod libvirt;
