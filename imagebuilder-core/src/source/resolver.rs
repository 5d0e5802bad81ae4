//! Resolving a template's `source` to a base disk.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    BaseDisk, CatalogEntry, ImageStore, InMemoryCatalog, InMemoryImageStore, PlatformImageCatalog,
};
use crate::template::model::{
    DiskFormat, DiskImageSource, HyperVGeneration, OsType, SecurityType, SourceSpec,
};
use crate::template::rules::{check_security_types, SecurityTypeError};

/// A source could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Nothing is published under that name.
    #[error("{what} was not found")]
    NotFound {
        /// The image asked for.
        what: String,
    },
    /// The image exists but not in that version.
    #[error("{what} has no version '{version}'; available: {available}")]
    VersionNotFound {
        /// The image asked for.
        what: String,
        /// The version asked for.
        version: String,
        /// The versions there are.
        available: String,
    },
    /// The image cannot be a source.
    #[error(transparent)]
    SecurityType(#[from] SecurityTypeError),
    /// The source names something this resolver cannot read.
    #[error("cannot use {what}: {reason}")]
    Unusable {
        /// The image asked for.
        what: String,
        /// Why.
        reason: String,
    },
    /// The catalog or store failed.
    #[error("failed to look up {what}: {message}")]
    Lookup {
        /// The image asked for.
        what: String,
        /// The catalog's or store's message.
        message: String,
    },
}

/// Turns a template's `source` into a base disk.
///
/// # Contract
/// `latest` is resolved now and the chosen version reported in [`BaseDisk::exact_version`];
/// the result is the same disk for the same catalog contents.
///
/// # Errors
/// [`SourceError`] says whether the image or the version was missing, unusable, or the lookup
/// failed.
///
/// # Cancellation
/// Dropping the future has no effect beyond the lookup.
#[async_trait]
pub trait Source: Send + Sync {
    /// Resolves `spec`.
    async fn resolve(&self, spec: &SourceSpec) -> Result<BaseDisk, SourceError>;
}

/// The built-in [`Source`]: platform images from a catalog, managed images and gallery
/// versions from image stores, `DiskImage` directly.
#[derive(Clone)]
pub struct SourceResolver {
    catalog: Arc<dyn PlatformImageCatalog>,
    managed_images: Arc<dyn ImageStore>,
    galleries: Arc<dyn ImageStore>,
}

impl std::fmt::Debug for SourceResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceResolver").finish_non_exhaustive()
    }
}

impl Default for SourceResolver {
    /// Empty in-memory catalog and stores: only `DiskImage` sources resolve.
    fn default() -> Self {
        Self::new(
            Arc::new(InMemoryCatalog::new()),
            Arc::new(InMemoryImageStore::new()),
            Arc::new(InMemoryImageStore::new()),
        )
    }
}

impl SourceResolver {
    /// A resolver over the given catalog and stores.
    pub fn new(
        catalog: Arc<dyn PlatformImageCatalog>,
        managed_images: Arc<dyn ImageStore>,
        galleries: Arc<dyn ImageStore>,
    ) -> Self {
        Self {
            catalog,
            managed_images,
            galleries,
        }
    }
}

#[async_trait]
impl Source for SourceResolver {
    async fn resolve(&self, spec: &SourceSpec) -> Result<BaseDisk, SourceError> {
        let disk = match spec {
            SourceSpec::PlatformImage(p) => {
                let what = format!("platform image {}:{}:{}", p.publisher, p.offer, p.sku);
                let entries = self
                    .catalog
                    .versions(&p.publisher, &p.offer, &p.sku)
                    .await
                    .map_err(|message| SourceError::Lookup {
                        what: what.clone(),
                        message,
                    })?;
                pick_version(&what, entries, &p.version)?
            }
            SourceSpec::ManagedImage(m) => {
                let what = format!("managed image {}", m.image_id);
                let entries =
                    self.managed_images
                        .versions(&m.image_id)
                        .await
                        .map_err(|message| SourceError::Lookup {
                            what: what.clone(),
                            message,
                        })?;
                let entry = entries
                    .into_iter()
                    .next()
                    .ok_or(SourceError::NotFound { what })?;
                entry.disk
            }
            SourceSpec::SharedImageVersion(s) => {
                let (definition, version) = split_version(&s.image_version_id);
                let what = format!("gallery image {definition}");
                let entries = self
                    .galleries
                    .versions(definition)
                    .await
                    .map_err(|message| SourceError::Lookup {
                        what: what.clone(),
                        message,
                    })?;
                pick_version(&what, entries, version)?
            }
            SourceSpec::DiskImage(d) => disk_image(d)?,
        };
        check_security_types(disk.security_type, None)?;
        Ok(disk)
    }
}

/// `.../images/D/versions/V` → (`.../images/D`, `V`).
fn split_version(id: &str) -> (&str, &str) {
    let lower = id.to_ascii_lowercase();
    match lower.rfind("/versions/") {
        Some(i) => (&id[..i], &id[i + "/versions/".len()..]),
        None => (id, ""),
    }
}

/// Chooses `version`, or for `latest` the highest version not excluded from latest.
fn pick_version(
    what: &str,
    entries: Vec<CatalogEntry>,
    version: &str,
) -> Result<BaseDisk, SourceError> {
    if entries.is_empty() {
        return Err(SourceError::NotFound {
            what: what.to_owned(),
        });
    }
    let available = || {
        let mut versions: Vec<&str> = entries.iter().map(|e| e.version.as_str()).collect();
        versions.sort_by_key(|v| version_key(v));
        versions.join(", ")
    };
    let chosen = if version.eq_ignore_ascii_case("latest") {
        entries
            .iter()
            .filter(|e| !e.exclude_from_latest)
            .max_by_key(|e| version_key(&e.version))
    } else {
        entries.iter().find(|e| e.version == version)
    };
    let Some(entry) = chosen else {
        return Err(SourceError::VersionNotFound {
            what: what.to_owned(),
            version: version.to_owned(),
            available: available(),
        });
    };
    let mut disk = entry.disk.clone();
    disk.exact_version = Some(entry.version.clone());
    Ok(disk)
}

/// Versions compare part by part as numbers: `1.10.0` is newer than `1.9.0`.
fn version_key(version: &str) -> Vec<u64> {
    version.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

fn disk_image(d: &DiskImageSource) -> Result<BaseDisk, SourceError> {
    let format = match d.format {
        Some(format) => format,
        None => format_from_name(&d.uri).ok_or_else(|| SourceError::Unusable {
            what: d.uri.clone(),
            reason: "the format is not given and the name does not end in .qcow2, .raw, .img or .vhd; set 'format'".into(),
        })?,
    };
    Ok(BaseDisk {
        location: d.uri.clone(),
        format,
        virtual_size: 0,
        sha256: (!d.sha256_checksum.is_empty()).then(|| d.sha256_checksum.to_ascii_lowercase()),
        os_type: d.os_type.unwrap_or(OsType::Linux),
        hyper_v_generation: d.hyper_v_generation.unwrap_or(HyperVGeneration::V1),
        security_type: d.security_type.unwrap_or(SecurityType::Standard),
        exact_version: None,
    })
}

fn format_from_name(uri: &str) -> Option<DiskFormat> {
    let name = uri.rsplit('/').next().unwrap_or(uri).to_ascii_lowercase();
    let extension = name.rsplit('.').next()?;
    match extension {
        "qcow2" => Some(DiskFormat::Qcow2),
        "raw" | "img" => Some(DiskFormat::Raw),
        "vhd" => Some(DiskFormat::Vhd),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::model::{PlatformImageSource, SharedImageVersionSource};

    fn disk(location: &str) -> BaseDisk {
        BaseDisk {
            location: location.into(),
            format: DiskFormat::Qcow2,
            virtual_size: 1 << 30,
            sha256: None,
            os_type: OsType::Linux,
            hyper_v_generation: HyperVGeneration::V2,
            security_type: SecurityType::Standard,
            exact_version: None,
        }
    }

    fn platform(version: &str) -> SourceSpec {
        SourceSpec::PlatformImage(PlatformImageSource {
            publisher: "Debian".into(),
            offer: "debian-12".into(),
            sku: "12".into(),
            version: version.into(),
            plan_info: None,
            exact_version: None,
        })
    }

    fn resolver() -> SourceResolver {
        let catalog = InMemoryCatalog::new();
        for v in ["1.9.0", "1.10.0", "1.2.0"] {
            catalog.add(
                "Debian",
                "debian-12",
                "12",
                v,
                disk(&format!("file:///{v}.qcow2")),
            );
        }
        let galleries = InMemoryImageStore::new();
        let definition =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d";
        for (v, excluded) in [("1.0.0", false), ("2.0.0", true)] {
            galleries.add(
                definition,
                CatalogEntry {
                    version: v.into(),
                    disk: disk(v),
                    exclude_from_latest: excluded,
                },
            );
        }
        SourceResolver::new(
            Arc::new(catalog),
            Arc::new(InMemoryImageStore::new()),
            Arc::new(galleries),
        )
    }

    #[tokio::test]
    async fn latest_is_the_numerically_highest_version() {
        let disk = resolver().resolve(&platform("latest")).await.unwrap();
        assert_eq!(disk.exact_version.as_deref(), Some("1.10.0"));
        assert_eq!(disk.location, "file:///1.10.0.qcow2");
    }

    #[tokio::test]
    async fn a_missing_version_lists_the_available_ones() {
        let err = resolver().resolve(&platform("3.0.0")).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "platform image Debian:debian-12:12 has no version '3.0.0'; available: 1.2.0, 1.9.0, 1.10.0"
        );
    }

    #[tokio::test]
    async fn gallery_latest_skips_versions_excluded_from_latest() {
        let spec = SourceSpec::SharedImageVersion(SharedImageVersionSource {
            image_version_id: "/subscriptions/s/resourceGroups/RG/providers/Microsoft.Compute/galleries/g/images/d/versions/latest".into(),
            exact_version: None,
        });
        let disk = resolver().resolve(&spec).await.unwrap();
        assert_eq!(disk.exact_version.as_deref(), Some("1.0.0"));
    }

    #[tokio::test]
    async fn disk_images_resolve_directly_and_refuse_trusted_launch() {
        let mut spec = DiskImageSource {
            uri: "file:///images/base.img".into(),
            format: None,
            sha256_checksum: "AB".repeat(32),
            os_type: None,
            hyper_v_generation: Some(HyperVGeneration::V2),
            security_type: None,
        };
        let disk = SourceResolver::default()
            .resolve(&SourceSpec::DiskImage(spec.clone()))
            .await
            .unwrap();
        assert_eq!(disk.format, DiskFormat::Raw);
        assert_eq!(disk.sha256, Some("ab".repeat(32)));
        assert_eq!(disk.hyper_v_generation, HyperVGeneration::V2);
        spec.security_type = Some(SecurityType::ConfidentialVm);
        let err = SourceResolver::default()
            .resolve(&SourceSpec::DiskImage(spec))
            .await
            .unwrap_err();
        assert!(matches!(err, SourceError::SecurityType(_)), "{err}");
    }

    #[tokio::test]
    async fn unknown_images_are_not_found() {
        let err = SourceResolver::default()
            .resolve(&platform("latest"))
            .await
            .unwrap_err();
        assert!(matches!(err, SourceError::NotFound { .. }), "{err}");
    }
}
