#![doc = include_str!("../README.md")]

#[cfg(feature = "mock")]
pub mod mock;

#[cfg(feature = "ssh")]
pub mod ssh;

#[cfg(any(feature = "qemu", feature = "libvirt"))]
mod vmkit;

/// The text of the NoCloud seed the VM hosts write. Public only for the `seed_user_data`
/// fuzz target (feature `fuzzing`); not a stable API.
#[cfg(any(feature = "qemu", feature = "libvirt", feature = "fuzzing"))]
#[doc(hidden)]
#[path = "vmkit/seed_text.rs"]
pub mod seed_text;

#[cfg(feature = "qemu")]
pub mod qemu;

#[cfg(feature = "libvirt")]
pub mod libvirt;
