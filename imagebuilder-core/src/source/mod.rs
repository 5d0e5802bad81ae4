//! Sources: turning a template's `source` into the base disk a build VM boots from.
//!
//! `latest` versions are resolved here, at build time, and reported as the exact version.
//! Platform images come from a [`PlatformImageCatalog`], managed images and gallery versions
//! from [`ImageStore`]s (the distributors of `imagebuilder-dist` write them), and `DiskImage`
//! names a file or URL directly. A [`SourceCache`] then makes the resolved disk a verified
//! local file: remote sources are downloaded, every digest is checked before a VM boots.

mod base_disk;
mod cache;
mod catalog;
mod resolver;

pub use base_disk::BaseDisk;
pub use cache::{SourceCache, SourceStageError, StagedSource, Staging};
pub use catalog::{
    CatalogEntry, ImageStore, InMemoryCatalog, InMemoryImageStore, PlatformImageCatalog,
};
pub use resolver::{Source, SourceError, SourceResolver};
