#![doc = include_str!("../README.md")]

#[cfg(feature = "mock")]
pub mod mock;
