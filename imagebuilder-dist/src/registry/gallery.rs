//! Compute galleries: galleries, image definitions and versions, kept as files.
//!
//! Layout under the root (names lower-cased):
//! ```text
//! SUB/RG/GALLERY/gallery.json
//! SUB/RG/GALLERY/images/DEF/definition.json
//! SUB/RG/GALLERY/images/DEF/versions/X.Y.Z.json      a complete version (its manifest)
//! SUB/RG/GALLERY/images/DEF/versions/X.Y.Z.pending   a version being published (locked)
//! ```
//! A publisher holds an exclusive lock on its `.pending` file for as long as it runs, and
//! records in it where its replicas go before writing any. A pending file nobody holds is the
//! leftover of a publisher that died: the next publish of that definition takes it over and
//! rolls it back (deletes the replicas it lists, then the file), or, when it publishes the
//! same number, completes it (its replicas go to the same paths).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use imagebuilder_core::source::{BaseDisk, CatalogEntry, ImageStore};
use imagebuilder_core::store::fsio::{
    create_dir_all, read_dir_entries, read_json, read_optional, sync_dir, write_json,
    write_json_new,
};
use imagebuilder_core::store::lock::FileLock;
use imagebuilder_core::store::StoreError;
use imagebuilder_core::template::model::{
    DiskFormat, HyperVGeneration, OsType, SecurityType, Versioning,
};

use super::ids::{DefinitionId, GalleryId, VersionTarget};
use super::model::{Gallery, ImageDefinition, Replica, VersionManifest};
use super::names::folder;
use super::reservation::{now, Reservation};
use super::version::{next_version, ImageVersion};
use super::RegistryError;

const GALLERY_FILE: &str = "gallery.json";
const DEFINITION_FILE: &str = "definition.json";
const LOCK_FILE: &str = ".lock";
const PENDING: &str = "pending";

/// The galleries under one folder. Cheap to clone; every call works on the files, so stores
/// on one folder in several processes see each other's changes.
#[derive(Debug, Clone)]
pub struct GalleryStore {
    root: PathBuf,
}

/// What a publish needs to know to choose and check its version.
#[derive(Debug, Clone)]
pub struct PublishRequest<'a> {
    /// The target's `galleryImageId`: a definition, or an explicit version of one.
    pub gallery_image_id: &'a str,
    /// How an automatic version is chosen.
    pub versioning: Versioning,
    /// The source image's version, for `Source` versioning.
    pub source_version: Option<&'a str>,
    /// The image's operating system; must match the definition.
    pub os_type: OsType,
    /// The image's generation; must match the definition.
    pub hyper_v_generation: HyperVGeneration,
    /// The image's security type; must match the definition.
    pub security_type: SecurityType,
}

/// A version being published: its number is reserved until this is committed or dropped.
#[derive(Debug)]
pub struct Publication {
    definition: DefinitionId,
    version: ImageVersion,
    versions_dir: PathBuf,
    // Held until commit or drop: tells other publishers the number is taken.
    claim: Reservation,
    /// Dead publishers' claims, taken over to be rolled back.
    abandoned: Vec<Abandoned>,
}

/// A publication whose publisher died before committing, taken over by a later publish. Its
/// pending file stays (with the list of its replicas) until [`Abandoned::rolled_back`] says
/// they are deleted, so a crash during the rollback leaves it for the next publish.
#[derive(Debug)]
pub struct Abandoned {
    /// Where the dead publisher was writing replicas (URIs as it recorded them).
    pub replicas: Vec<String>,
    /// `None` when this publish took the claim over to complete the same number.
    claim: Option<Reservation>,
}

impl Abandoned {
    /// The replicas are deleted: the pending file goes, and its number is free again.
    pub fn rolled_back(mut self) {
        if let Some(claim) = &mut self.claim {
            claim.remove_file_on_drop();
        }
    }
}

/// What a pending file records: where its publisher writes.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct PendingRecord {
    replicas: Vec<String>,
}

fn read_pending(path: &Path) -> PendingRecord {
    // An empty or unreadable record (a publisher that died before recording) lists nothing.
    fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// A version removed from its gallery whose replicas are still to be deleted. Its number
/// stays reserved until this is dropped, so no new version writes to the same replica paths
/// meanwhile.
#[derive(Debug)]
pub struct RemovedVersion {
    /// The removed version's manifest: where its replicas are.
    pub manifest: VersionManifest,
    _claim: Reservation,
}

impl GalleryStore {
    /// The galleries under `root` (created on first write).
    pub fn open(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn gallery_dir(&self, id: &GalleryId) -> Result<PathBuf, RegistryError> {
        let text = id.to_string();
        Ok(self
            .root
            .join(folder(&id.subscription, &text)?)
            .join(folder(&id.resource_group, &text)?)
            .join(folder(&id.gallery, &text)?))
    }

    fn definition_dir(&self, id: &DefinitionId) -> Result<PathBuf, RegistryError> {
        let image = folder(&id.image, &id.to_string())?;
        Ok(self.gallery_dir(&id.gallery)?.join("images").join(image))
    }

    /// Creates a gallery.
    ///
    /// # Errors
    /// [`RegistryError::AlreadyExists`] when it exists; `BadId` for a malformed id.
    pub fn create_gallery(
        &self,
        id: &str,
        location: &str,
        description: &str,
    ) -> Result<Gallery, RegistryError> {
        let id = GalleryId::parse(id)?;
        let dir = self.gallery_dir(&id)?;
        create_dir_all(&self.root)?;
        let _lock = FileLock::exclusive(&self.root.join(LOCK_FILE))?;
        let path = dir.join(GALLERY_FILE);
        if read_optional(&path)?.is_some() {
            return Err(RegistryError::AlreadyExists {
                what: format!("gallery {id}"),
            });
        }
        create_dir_all(&dir)?;
        let gallery = Gallery {
            id: id.to_string(),
            location: location.to_owned(),
            description: description.to_owned(),
            created: now(),
        };
        write_json(&path, &gallery)?;
        Ok(gallery)
    }

    /// The gallery `id`.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] with how to create it.
    pub fn gallery(&self, id: &str) -> Result<Gallery, RegistryError> {
        let id = GalleryId::parse(id)?;
        self.load_gallery(&id)
    }

    fn load_gallery(&self, id: &GalleryId) -> Result<Gallery, RegistryError> {
        let path = self.gallery_dir(id)?.join(GALLERY_FILE);
        if read_optional(&path)?.is_none() {
            return Err(RegistryError::NotFound {
                what: format!("gallery {id}"),
                hint: "; create it with `imagebuilder gallery create`".to_owned(),
            });
        }
        Ok(read_json(&path)?)
    }

    /// Every gallery, by id.
    ///
    /// # Errors
    /// When the folder cannot be read.
    pub fn galleries(&self) -> Result<Vec<Gallery>, RegistryError> {
        let mut found = Vec::new();
        for subscription in subdirs(&self.root)? {
            for group in subdirs(&subscription)? {
                for gallery in subdirs(&group)? {
                    let path = gallery.join(GALLERY_FILE);
                    if read_optional(&path)?.is_some() {
                        found.push(read_json::<Gallery>(&path)?);
                    }
                }
            }
        }
        found.sort_by_key(|item| item.id.to_ascii_lowercase());
        Ok(found)
    }

    /// Creates an image definition in an existing gallery. `definition.id` names it; its
    /// `created` time is set here.
    ///
    /// # Errors
    /// `NotFound` when the gallery does not exist, `AlreadyExists` when the definition does.
    pub fn define_image(
        &self,
        mut definition: ImageDefinition,
    ) -> Result<ImageDefinition, RegistryError> {
        let id = DefinitionId::parse(&definition.id)?;
        self.load_gallery(&id.gallery)?;
        let dir = self.definition_dir(&id)?;
        let _lock = FileLock::exclusive(&self.gallery_dir(&id.gallery)?.join(LOCK_FILE))?;
        let path = dir.join(DEFINITION_FILE);
        if read_optional(&path)?.is_some() {
            return Err(RegistryError::AlreadyExists {
                what: format!("image definition {id}"),
            });
        }
        create_dir_all(&dir.join("versions"))?;
        definition.id = id.to_string();
        definition.created = now();
        write_json(&path, &definition)?;
        Ok(definition)
    }

    /// The image definition `id`.
    ///
    /// # Errors
    /// `NotFound` naming the gallery or the definition, whichever is missing.
    pub fn definition(&self, id: &str) -> Result<ImageDefinition, RegistryError> {
        self.load_definition(&DefinitionId::parse(id)?)
    }

    fn load_definition(&self, id: &DefinitionId) -> Result<ImageDefinition, RegistryError> {
        self.load_gallery(&id.gallery)?;
        let path = self.definition_dir(id)?.join(DEFINITION_FILE);
        if read_optional(&path)?.is_none() {
            return Err(RegistryError::NotFound {
                what: format!("image definition {id}"),
                hint: "; create it with `imagebuilder gallery define`".to_owned(),
            });
        }
        Ok(read_json(&path)?)
    }

    /// The definitions of gallery `id`.
    ///
    /// # Errors
    /// `NotFound` when the gallery does not exist.
    pub fn definitions(&self, gallery_id: &str) -> Result<Vec<ImageDefinition>, RegistryError> {
        let id = GalleryId::parse(gallery_id)?;
        self.load_gallery(&id)?;
        let mut found = Vec::new();
        for dir in subdirs(&self.gallery_dir(&id)?.join("images"))? {
            let path = dir.join(DEFINITION_FILE);
            if read_optional(&path)?.is_some() {
                found.push(read_json::<ImageDefinition>(&path)?);
            }
        }
        found.sort_by_key(|item| item.id.to_ascii_lowercase());
        Ok(found)
    }

    /// The complete versions of definition `id`, oldest first. Versions being published (or
    /// left half-published by a crash) are never listed.
    ///
    /// # Errors
    /// `NotFound` when the gallery or definition does not exist.
    pub fn versions(&self, definition_id: &str) -> Result<Vec<VersionManifest>, RegistryError> {
        let id = DefinitionId::parse(definition_id)?;
        self.load_definition(&id)?;
        let dir = self.definition_dir(&id)?.join("versions");
        let mut found: Vec<(ImageVersion, VersionManifest)> = Vec::new();
        for (version, path) in version_files(&dir, "json")? {
            found.push((version, read_json(&path)?));
        }
        found.sort_by_key(|(version, _)| *version);
        Ok(found.into_iter().map(|(_, manifest)| manifest).collect())
    }

    /// The complete version `version_id` (`.../images/D/versions/x.y.z`).
    ///
    /// # Errors
    /// `NotFound` when it (or its definition) does not exist.
    pub fn version(&self, version_id: &str) -> Result<VersionManifest, RegistryError> {
        let (id, version) = explicit(version_id)?;
        self.load_definition(&id)?;
        let path = self.manifest_path(&id, &version)?;
        if read_optional(&path)?.is_none() {
            return Err(RegistryError::NotFound {
                what: format!("image version {}", id.version_id(&version)),
                hint: String::new(),
            });
        }
        Ok(read_json(&path)?)
    }

    /// Removes version `version_id` from the gallery. It stops being listed at once; its
    /// number stays reserved while the caller deletes the replicas the returned manifest
    /// names.
    ///
    /// # Errors
    /// `NotFound` when it does not exist; `AlreadyExists` when another run holds its number.
    pub fn delete_version(&self, version_id: &str) -> Result<RemovedVersion, RegistryError> {
        let (id, version) = explicit(version_id)?;
        let dir = self.definition_dir(&id)?;
        let _lock = FileLock::exclusive(&dir.join(LOCK_FILE))?;
        let manifest = self.version(version_id)?;
        let versions_dir = dir.join("versions");
        let claim = Reservation::try_take(&versions_dir.join(format!("{version}.{PENDING}")))?
            .ok_or_else(|| RegistryError::AlreadyExists {
                what: format!("a run working on image version {}", id.version_id(&version)),
            })?;
        let path = self.manifest_path(&id, &version)?;
        fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
        sync_dir(&versions_dir)?;
        Ok(RemovedVersion {
            manifest,
            _claim: claim,
        })
    }

    fn manifest_path(
        &self,
        id: &DefinitionId,
        version: &ImageVersion,
    ) -> Result<PathBuf, RegistryError> {
        Ok(self
            .definition_dir(id)?
            .join("versions")
            .join(format!("{version}.json")))
    }

    /// Checks the image against the definition, chooses the version number and reserves it.
    ///
    /// # Errors
    /// `NotFound` when the gallery or definition does not exist (AIB does not create them),
    /// `Mismatch` when the image's OS, generation or security type differs from the
    /// definition's, `AlreadyExists` for an explicit version that exists or is being
    /// published, `Version` when no number can be chosen.
    pub fn begin_publish(
        &self,
        request: &PublishRequest<'_>,
    ) -> Result<Publication, RegistryError> {
        let target = VersionTarget::parse(request.gallery_image_id)?;
        let id = target.definition().clone();
        let definition = self.load_definition(&id)?;
        check_matches(&definition, request)?;
        let dir = self.definition_dir(&id)?;
        let versions_dir = dir.join("versions");
        create_dir_all(&versions_dir)?;
        // Choosing a number and reserving it happen under one lock, so two publishers never
        // take the same number.
        let _choosing = FileLock::exclusive(&dir.join(LOCK_FILE))?;
        // Pending before complete: a publisher commits (writes its manifest) before it drops
        // its pending file, so every number is seen in one list or the other.
        let mut in_progress = Vec::new();
        let mut abandoned = Vec::new();
        for (version, path) in version_files(&versions_dir, PENDING)? {
            if FileLock::is_held(&path)? {
                in_progress.push(version);
                continue;
            }
            // Gone or replaced meanwhile: its publisher finished.
            let Some(mut claim) = Reservation::take_over(&path)? else {
                continue;
            };
            if versions_dir.join(format!("{version}.json")).exists() {
                // Its publisher died after committing: the version is complete.
                claim.remove_file_on_drop();
            } else {
                // A dead publisher's leftover: ours to roll back (or to complete, below).
                abandoned.push((version, claim));
            }
        }
        let complete: Vec<ImageVersion> = version_files(&versions_dir, "json")?
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        let version = match &target {
            VersionTarget::Explicit(_, version) => *version,
            VersionTarget::Automatic(_) => {
                let taken: Vec<ImageVersion> =
                    complete.iter().chain(&in_progress).copied().collect();
                next_version(&taken, request.versioning, request.source_version)
                    .map_err(RegistryError::Version)?
            }
        };
        if complete.contains(&version) {
            return Err(RegistryError::AlreadyExists {
                what: format!("image version {}", id.version_id(&version)),
            });
        }
        if in_progress.contains(&version) {
            return Err(RegistryError::AlreadyExists {
                what: format!(
                    "image version {} (another run is publishing it)",
                    id.version_id(&version)
                ),
            });
        }
        // Publishing a dead publisher's number completes it: same replica paths (those in
        // regions this publish does not write are rolled back with the others).
        let mut inherited = Vec::new();
        let (mut claim, abandoned) = match abandoned.iter().position(|(v, _)| *v == version) {
            Some(i) => {
                let (_, claim) = abandoned.remove(i);
                inherited.push(Abandoned {
                    replicas: read_pending(claim.path()).replicas,
                    claim: None,
                });
                (claim, abandoned)
            }
            None => {
                let claim =
                    Reservation::try_take(&versions_dir.join(format!("{version}.{PENDING}")))?
                        .ok_or_else(|| RegistryError::AlreadyExists {
                            what: format!(
                                "image version {} (being published)",
                                id.version_id(&version)
                            ),
                        })?;
                (claim, abandoned)
            }
        };
        claim.remove_file_on_drop();
        let abandoned = abandoned
            .into_iter()
            .map(|(_, claim)| Abandoned {
                replicas: read_pending(claim.path()).replicas,
                claim: Some(claim),
            })
            .chain(inherited)
            .collect();
        Ok(Publication {
            definition: id,
            version,
            versions_dir,
            claim,
            abandoned,
        })
    }
}

fn explicit(version_id: &str) -> Result<(DefinitionId, ImageVersion), RegistryError> {
    match VersionTarget::parse(version_id)? {
        VersionTarget::Explicit(id, version) => Ok((id, version)),
        VersionTarget::Automatic(_) => Err(RegistryError::BadId {
            id: version_id.to_owned(),
            expected: "an image version id ending in /versions/x.y.z".to_owned(),
        }),
    }
}

fn check_matches(
    definition: &ImageDefinition,
    request: &PublishRequest<'_>,
) -> Result<(), RegistryError> {
    let mismatch = |field, image: String, wanted: String| RegistryError::Mismatch {
        field,
        image,
        definition: wanted,
        definition_id: definition.id.clone(),
    };
    if definition.os_type != request.os_type {
        return Err(mismatch(
            "osType",
            request.os_type.to_string(),
            definition.os_type.to_string(),
        ));
    }
    if definition.hyper_v_generation != request.hyper_v_generation {
        return Err(mismatch(
            "hyperVGeneration",
            request.hyper_v_generation.to_string(),
            definition.hyper_v_generation.to_string(),
        ));
    }
    if definition.security_type != request.security_type {
        return Err(mismatch(
            "securityType",
            request.security_type.to_string(),
            definition.security_type.to_string(),
        ));
    }
    Ok(())
}

/// The subfolders of `dir` (none when it does not exist), skipping hidden ones.
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, RegistryError> {
    Ok(read_dir_entries(dir)?
        .into_iter()
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect())
}

/// Files `X.Y.Z.<extension>` in `dir`, with their versions; other names are ignored.
fn version_files(
    dir: &Path,
    extension: &str,
) -> Result<Vec<(ImageVersion, PathBuf)>, RegistryError> {
    let suffix = format!(".{extension}");
    Ok(read_dir_entries(dir)?
        .into_iter()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = name.strip_suffix(&suffix)?.parse().ok()?;
            Some((version, entry.path()))
        })
        .collect())
}

impl Publication {
    /// The version number reserved.
    pub fn version(&self) -> ImageVersion {
        self.version
    }

    /// The ARM id of the version.
    pub fn version_id(&self) -> String {
        self.definition.version_id(&self.version)
    }

    /// Where in a region's object store this version's disk goes: the same path on every
    /// publish of this number, so a rerun replaces what a crashed one left.
    pub fn object_path(&self, extension: &str) -> String {
        let d = &self.definition;
        let lower = |s: &str| s.to_ascii_lowercase();
        format!(
            "galleries/{}/{}/{}/{}/{}/disk.{extension}",
            lower(&d.gallery.subscription),
            lower(&d.gallery.resource_group),
            lower(&d.gallery.gallery),
            lower(&d.image),
            self.version
        )
    }

    /// Records where the replicas go, before any is written, so that if this publisher dies
    /// the next one can delete them.
    ///
    /// # Errors
    /// When the record cannot be written (then nothing should be written either).
    pub fn record_replicas(&self, uris: &[String]) -> Result<(), RegistryError> {
        let record = PendingRecord {
            replicas: uris.to_vec(),
        };
        let path = self.claim.path();
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| StoreError::io("encode", path, std::io::Error::other(e.to_string())))?;
        // Rewritten in place: the lock is on this file, not on its name.
        let write = || -> std::io::Result<()> {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)?;
            std::io::Write::write_all(&mut file, &bytes)?;
            file.sync_all()
        };
        write().map_err(|e| StoreError::io("write", path, e))?;
        Ok(())
    }

    /// Dead publishers' claims on this definition, taken over by this publish: delete their
    /// replicas, then call [`Abandoned::rolled_back`].
    pub fn take_abandoned(&mut self) -> Vec<Abandoned> {
        std::mem::take(&mut self.abandoned)
    }

    /// Makes the version visible: writes its manifest, the last step of a publish.
    ///
    /// # Errors
    /// When the manifest cannot be written; the version then stays invisible.
    pub fn commit(self, details: VersionDetails) -> Result<VersionManifest, RegistryError> {
        let manifest = VersionManifest {
            id: self.version_id(),
            version: self.version.to_string(),
            published: now(),
            exclude_from_latest: details.exclude_from_latest,
            end_of_life_date: details.end_of_life_date,
            tags: details.tags,
            format: details.format,
            virtual_size: details.virtual_size,
            source_version: details.source_version,
            replicas: details.replicas,
        };
        let path = self.versions_dir.join(format!("{}.json", self.version));
        // Never replaces a manifest: the reservation makes a clash impossible, and if one
        // happened anyway the version published first must win.
        if !write_json_new(&path, &manifest)? {
            return Err(RegistryError::AlreadyExists {
                what: format!("image version {}", manifest.id),
            });
        }
        Ok(manifest)
    }
}

/// What a version's manifest records besides its number.
#[derive(Debug, Clone)]
pub struct VersionDetails {
    /// Whether `latest` skips it.
    pub exclude_from_latest: bool,
    /// When it stops being supported.
    pub end_of_life_date: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Format of the replicas' files.
    pub format: DiskFormat,
    /// Virtual size of the disk.
    pub virtual_size: u64,
    /// The source image's version.
    pub source_version: Option<String>,
    /// One per target region.
    pub replicas: Vec<Replica>,
}

#[async_trait]
impl ImageStore for GalleryStore {
    /// The versions of a gallery image definition, each served from its first replica.
    async fn versions(&self, id: &str) -> Result<Vec<CatalogEntry>, String> {
        let store = self.clone();
        let id = id.to_owned();
        let result = tokio::task::spawn_blocking(move || {
            let definition = match store.definition(&id) {
                Ok(d) => d,
                Err(RegistryError::NotFound { .. }) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let versions = store.versions(&id)?;
            Ok(versions
                .into_iter()
                .filter_map(|m| {
                    let replica = m.replicas.first()?;
                    Some(CatalogEntry {
                        disk: BaseDisk {
                            location: replica.uri.clone(),
                            format: m.format,
                            virtual_size: m.virtual_size,
                            sha256: Some(replica.sha256.clone()),
                            os_type: definition.os_type,
                            hyper_v_generation: definition.hyper_v_generation,
                            security_type: definition.security_type,
                            exact_version: Some(m.version.clone()),
                        },
                        version: m.version,
                        exclude_from_latest: m.exclude_from_latest,
                    })
                })
                .collect())
        })
        .await
        .map_err(|e| e.to_string())?;
        result.map_err(|e: RegistryError| e.to_string())
    }
}
