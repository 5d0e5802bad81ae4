#![doc = include_str!("../README.md")]

#[cfg(feature = "mock")]
pub mod mock;

#[cfg(feature = "ssh")]
pub mod ssh;

#[cfg(feature = "qemu")]
mod vmkit;

#[cfg(feature = "qemu")]
pub mod qemu;

