//! Where published images are recorded: compute galleries and managed images.
//!
//! Both are folders of JSON records under the state directory; the disks themselves live in
//! the object store of their region. A record is written only after every byte it points to,
//! so whatever a reader lists is complete: a gallery version appears when its manifest (with
//! each replica's sha256) lands, which is the last step of publishing it.

mod error;
mod gallery;
mod ids;
mod managed;
mod model;
mod names;
mod reservation;
mod version;

pub use error::RegistryError;
pub use gallery::{
    Abandoned, GalleryStore, Publication, PublishRequest, RemovedVersion, VersionDetails,
};
pub use ids::{DefinitionId, GalleryId, ManagedImageId, VersionTarget};
pub use managed::{ManagedImageReservation, ManagedImageStore};
pub use model::{Gallery, ImageDefinition, ManagedImage, OsState, Replica, VersionManifest};
pub use version::{next_version, ImageVersion};

/// The galleries of a state directory, in `STATE/galleries`.
pub fn galleries_in(state_dir: &std::path::Path) -> GalleryStore {
    GalleryStore::open(state_dir.join("galleries"))
}

/// The managed images of a state directory, in `STATE/managed-images`.
pub fn managed_images_in(state_dir: &std::path::Path) -> ManagedImageStore {
    ManagedImageStore::open(state_dir.join("managed-images"))
}
