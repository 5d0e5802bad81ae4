//! Where versioned sources are looked up.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::BaseDisk;

/// One published version of a platform image or gallery image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Version `x.y.z`.
    pub version: String,
    /// The disk of that version.
    pub disk: BaseDisk,
    /// Excluded from `latest` (a gallery version's `excludeFromLatest`).
    pub exclude_from_latest: bool,
}

/// Platform images by `publisher:offer:sku`.
///
/// # Contract
/// `versions` lists every published version of the image (any order); an unknown image is an
/// empty list.
///
/// # Errors
/// A message when the catalog cannot be read.
///
/// # Cancellation
/// Dropping the future has no effect beyond the lookup.
#[async_trait]
pub trait PlatformImageCatalog: Send + Sync {
    /// The versions of `publisher:offer:sku`.
    async fn versions(
        &self,
        publisher: &str,
        offer: &str,
        sku: &str,
    ) -> Result<Vec<CatalogEntry>, String>;
}

/// Images by ARM id: managed images (`.../images/N`) and gallery image definitions
/// (`.../galleries/G/images/D`, whose versions are the entries).
///
/// # Contract
/// `versions` of a managed image id holds one entry whose version is empty; of a gallery
/// image definition, every version; of an unknown id, nothing.
///
/// # Errors
/// A message when the store cannot be read.
///
/// # Cancellation
/// Dropping the future has no effect beyond the lookup.
#[async_trait]
pub trait ImageStore: Send + Sync {
    /// The versions published under `id` (compared case-insensitively, as ARM ids are).
    async fn versions(&self, id: &str) -> Result<Vec<CatalogEntry>, String>;
}

/// A catalog held in memory, for tests and small setups.
#[derive(Debug, Default)]
pub struct InMemoryCatalog {
    images: Mutex<BTreeMap<String, Vec<CatalogEntry>>>,
}

fn catalog_key(publisher: &str, offer: &str, sku: &str) -> String {
    format!("{publisher}:{offer}:{sku}").to_ascii_lowercase()
}

impl InMemoryCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a version of `publisher:offer:sku`.
    pub fn add(&self, publisher: &str, offer: &str, sku: &str, version: &str, disk: BaseDisk) {
        let mut images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        images
            .entry(catalog_key(publisher, offer, sku))
            .or_default()
            .push(CatalogEntry {
                version: version.to_owned(),
                disk,
                exclude_from_latest: false,
            });
    }
}

#[async_trait]
impl PlatformImageCatalog for InMemoryCatalog {
    async fn versions(
        &self,
        publisher: &str,
        offer: &str,
        sku: &str,
    ) -> Result<Vec<CatalogEntry>, String> {
        let images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(images
            .get(&catalog_key(publisher, offer, sku))
            .cloned()
            .unwrap_or_default())
    }
}

/// An image store held in memory, for tests.
#[derive(Debug, Default)]
pub struct InMemoryImageStore {
    images: Mutex<BTreeMap<String, Vec<CatalogEntry>>>,
}

impl InMemoryImageStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry under `id` (a managed image id with an empty version, or a gallery image
    /// definition id with a version).
    pub fn add(&self, id: &str, entry: CatalogEntry) {
        let mut images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        images
            .entry(id.to_ascii_lowercase())
            .or_default()
            .push(entry);
    }
}

#[async_trait]
impl ImageStore for InMemoryImageStore {
    async fn versions(&self, id: &str) -> Result<Vec<CatalogEntry>, String> {
        let images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(images
            .get(&id.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default())
    }
}
