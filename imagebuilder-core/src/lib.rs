#![doc = include_str!("../README.md")]

pub mod run;
pub mod template;
