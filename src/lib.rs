#![doc = include_str!("../README.md")]

pub use imagebuilder_core as core;
pub use imagebuilder_core::template;

/// Build hosts: mock, QEMU, libvirt.
#[cfg(feature = "drivers")]
pub use imagebuilder_drivers as drivers;

/// Disk formats and distributors.
#[cfg(feature = "dist")]
pub use imagebuilder_dist as dist;
