#![doc = include_str!("../README.md")]

pub mod disk;
mod local;
mod publish;
pub mod registry;
pub mod store;
mod targets;

pub use local::LocalTargets;
pub use targets::{
    GalleryDistributor, ManagedImageDistributor, ObjectStoreDistributor, VhdDistributor,
};
