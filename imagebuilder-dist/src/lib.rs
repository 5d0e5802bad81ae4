#![doc = include_str!("../README.md")]

mod local;
mod vhd;

pub use local::LocalTargets;
pub use vhd::VhdDistributor;
