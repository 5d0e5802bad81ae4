#![doc = include_str!("../README.md")]

pub mod disk;
mod local;
pub mod registry;
pub mod store;
mod vhd;

pub use local::LocalTargets;
pub use vhd::VhdDistributor;
