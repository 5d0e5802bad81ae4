//! Managed images: one disk in one region per ARM image id, kept as files.
//!
//! Layout under the root (names lower-cased): `SUB/RG/NAME.json` for an image that exists,
//! `SUB/RG/NAME.pending` (locked by its writer) while one is being made.

use std::fs;
use std::path::PathBuf;

use async_trait::async_trait;
use imagebuilder_core::source::{BaseDisk, CatalogEntry, ImageStore};
use imagebuilder_core::store::fsio::{
    create_dir_all, read_dir_entries, read_json, read_optional, write_json_new,
};
use imagebuilder_core::store::StoreError;

use super::ids::ManagedImageId;
use super::model::ManagedImage;
use super::names::folder;
use super::reservation::{now, Reservation};
use super::RegistryError;

/// The managed images under one folder.
#[derive(Debug, Clone)]
pub struct ManagedImageStore {
    root: PathBuf,
}

/// A managed image id reserved for an image being made; released on drop.
#[derive(Debug)]
pub struct ManagedImageReservation {
    id: ManagedImageId,
    record_path: PathBuf,
    _claim: Reservation,
}

impl ManagedImageStore {
    /// The managed images under `root` (created on first write).
    pub fn open(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn paths(&self, id: &ManagedImageId) -> Result<(PathBuf, String), RegistryError> {
        let text = id.to_string();
        let dir = self
            .root
            .join(folder(&id.subscription, &text)?)
            .join(folder(&id.resource_group, &text)?);
        Ok((dir, folder(&id.name, &text)?))
    }

    /// Reserves `id` for a new image.
    ///
    /// # Errors
    /// `AlreadyExists` when an image with that id exists or is being made: an existing
    /// image is never replaced (delete it first).
    pub fn reserve(&self, id: &str) -> Result<ManagedImageReservation, RegistryError> {
        let id = ManagedImageId::parse(id)?;
        let (dir, name) = self.paths(&id)?;
        create_dir_all(&dir)?;
        let record_path = dir.join(format!("{name}.json"));
        let claim =
            Reservation::try_take(&dir.join(format!("{name}.pending")))?.ok_or_else(|| {
                RegistryError::AlreadyExists {
                    what: format!("managed image {id} (another run is making it)"),
                }
            })?;
        if read_optional(&record_path)?.is_some() {
            return Err(RegistryError::AlreadyExists {
                what: format!("managed image {id}"),
            });
        }
        Ok(ManagedImageReservation {
            id,
            record_path,
            _claim: claim,
        })
    }

    /// The image `id`.
    ///
    /// # Errors
    /// `NotFound` when it does not exist.
    pub fn get(&self, id: &str) -> Result<ManagedImage, RegistryError> {
        let parsed = ManagedImageId::parse(id)?;
        let (dir, name) = self.paths(&parsed)?;
        let path = dir.join(format!("{name}.json"));
        if read_optional(&path)?.is_none() {
            return Err(RegistryError::NotFound {
                what: format!("managed image {parsed}"),
                hint: String::new(),
            });
        }
        Ok(read_json(&path)?)
    }

    /// Every managed image, by id.
    ///
    /// # Errors
    /// When the folder cannot be read.
    pub fn list(&self) -> Result<Vec<ManagedImage>, RegistryError> {
        let mut found = Vec::new();
        for group in dirs_at_depth(&self.root, 2)? {
            for entry in read_dir_entries(&group)? {
                let path = entry.path();
                let visible = !entry.file_name().to_string_lossy().starts_with('.');
                if visible && path.extension().is_some_and(|e| e == "json") {
                    found.push(read_json::<ManagedImage>(&path)?);
                }
            }
        }
        found.sort_by_key(|item| item.id.to_ascii_lowercase());
        Ok(found)
    }

    /// Removes image `id`'s record and returns it, so the caller can delete its disk.
    ///
    /// # Errors
    /// `NotFound` when it does not exist.
    pub fn delete(&self, id: &str) -> Result<ManagedImage, RegistryError> {
        let parsed = ManagedImageId::parse(id)?;
        let (dir, name) = self.paths(&parsed)?;
        let _claim =
            Reservation::try_take(&dir.join(format!("{name}.pending")))?.ok_or_else(|| {
                RegistryError::AlreadyExists {
                    what: format!("a run working on managed image {parsed}"),
                }
            })?;
        let image = self.get(id)?;
        let path = dir.join(format!("{name}.json"));
        fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
        Ok(image)
    }
}

/// Folders exactly `depth` levels below `root` (none when it does not exist).
fn dirs_at_depth(root: &std::path::Path, depth: usize) -> Result<Vec<PathBuf>, RegistryError> {
    let mut level = vec![root.to_path_buf()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for dir in level {
            next.extend(
                read_dir_entries(&dir)?
                    .into_iter()
                    .map(|entry| entry.path())
                    .filter(|path| path.is_dir()),
            );
        }
        level = next;
    }
    Ok(level)
}

impl ManagedImageReservation {
    /// The canonical ARM id reserved.
    pub fn id(&self) -> String {
        self.id.to_string()
    }

    /// Where in its region's object store the image's disk goes.
    pub fn object_path(&self, extension: &str) -> String {
        let lower = |s: &str| s.to_ascii_lowercase();
        format!(
            "managed-images/{}/{}/{}.{extension}",
            lower(&self.id.subscription),
            lower(&self.id.resource_group),
            lower(&self.id.name)
        )
    }

    /// Records the image; it exists from now on. `image.id` is set to the reserved id and
    /// `image.created` to now.
    ///
    /// # Errors
    /// When the record cannot be written; the image then does not exist.
    pub fn commit(self, mut image: ManagedImage) -> Result<ManagedImage, RegistryError> {
        image.id = self.id();
        image.created = now();
        if !write_json_new(&self.record_path, &image)? {
            return Err(RegistryError::AlreadyExists {
                what: format!("managed image {}", image.id),
            });
        }
        Ok(image)
    }
}

#[async_trait]
impl ImageStore for ManagedImageStore {
    /// One entry with an empty version for an existing image, none otherwise.
    async fn versions(&self, id: &str) -> Result<Vec<CatalogEntry>, String> {
        let store = self.clone();
        let id = id.to_owned();
        let found = tokio::task::spawn_blocking(move || store.get(&id))
            .await
            .map_err(|e| e.to_string())?;
        match found {
            Ok(image) => Ok(vec![CatalogEntry {
                version: String::new(),
                disk: BaseDisk {
                    location: image.uri,
                    format: image.format,
                    virtual_size: image.virtual_size,
                    sha256: Some(image.sha256),
                    os_type: image.os_type,
                    hyper_v_generation: image.hyper_v_generation,
                    security_type: image.security_type,
                    exact_version: None,
                },
                exclude_from_latest: false,
            }]),
            Err(RegistryError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }
}
