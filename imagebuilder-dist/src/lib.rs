#![doc = include_str!("../README.md")]

/// Disk image formats (the `imagebuilder-disk` crate, shared with the build hosts).
pub use imagebuilder_disk as disk;
mod local;
mod publish;
pub mod registry;
pub mod store;
mod targets;

pub use local::LocalTargets;
pub use targets::{
    GalleryDistributor, ManagedImageDistributor, ObjectStoreDistributor, VhdDistributor,
};
