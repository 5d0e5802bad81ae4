//! The environment: how the Azure names in a template map to local things.
//!
//! An environment file (JSON) lists the platform images a `PlatformImage` source may name and
//! the object store of each region. Without one, the embedded default keeps everything under
//! one state directory, so a first build needs no configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::source::{BaseDisk, InMemoryCatalog};
use crate::template::model::{DiskFormat, HyperVGeneration, OsType, SecurityType};
use crate::template::rules::is_sha256_hex;

/// One version of a platform image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformImageEntry {
    /// Publisher, e.g. `Debian`.
    pub publisher: String,
    /// Offer, e.g. `debian-12`.
    pub offer: String,
    /// Sku, e.g. `12-gen2`.
    pub sku: String,
    /// Version `x.y.z`.
    pub version: String,
    /// Where the disk is: a path or URL.
    pub uri: String,
    /// Its format.
    pub format: DiskFormat,
    /// Its sha256, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Operating system (default Linux).
    #[serde(default = "linux")]
    pub os_type: OsType,
    /// Generation (default V1).
    #[serde(default = "gen1")]
    pub hyper_v_generation: HyperVGeneration,
    /// Security type (default Standard).
    #[serde(default = "standard")]
    pub security_type: SecurityType,
}

fn linux() -> OsType {
    OsType::Linux
}
fn gen1() -> HyperVGeneration {
    HyperVGeneration::V1
}
fn standard() -> SecurityType {
    SecurityType::Standard
}

/// Local resources that stand for Azure ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Environment {
    /// The state directory (templates, staging, images); the default one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// Platform images by publisher, offer, sku and version.
    #[serde(default)]
    pub platform_images: Vec<PlatformImageEntry>,
    /// Object store URL of each region (`file://`, `s3://`, `az://`, `gs://`, `memory://`).
    /// The key `*` serves any other region, with `{region}` in its URL replaced by the
    /// region's name in lower case.
    #[serde(default)]
    pub regions: BTreeMap<String, String>,
}

/// Where builds run, as an environment file may say (`"buildHost"`); the command line wins
/// over it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct BuildHostEntry {
    /// `mock`, `qemu` or `libvirt`.
    #[serde(rename = "type")]
    pub kind: String,
    /// libvirt: the connection URI, e.g. `qemu+ssh://builder@hv1/system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// libvirt: the storage pool for the VMs' volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// libvirt: a libvirt network to attach VMs to instead of the user-mode network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// libvirt: a host bridge to attach VMs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
}

/// An environment file as written: the [`Environment`] and the optional build host. Mirrors
/// `Environment`'s fields so reading stays strict and errors keep their line and column.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnvironmentFile {
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    platform_images: Vec<PlatformImageEntry>,
    #[serde(default)]
    regions: BTreeMap<String, String>,
    #[serde(default)]
    build_host: Option<BuildHostEntry>,
}

/// The key of [`Environment::regions`] that serves every region not listed by name.
pub const ANY_REGION: &str = "*";

/// What the `*` region's URL contains where the region's name goes.
pub const REGION_PLACEHOLDER: &str = "{region}";

/// A region the environment has no object store for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("region '{region}' {reason}; known regions: {}", if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
pub struct UnknownRegion {
    /// The region asked for.
    pub region: String,
    /// Why it has no store.
    pub reason: String,
    /// The regions the environment lists.
    pub known: Vec<String>,
}

/// `file://` URL of a directory, ending in `/`, with unusual characters escaped.
fn directory_url(dir: &Path) -> String {
    url::Url::from_directory_path(dir)
        .map_or_else(|()| format!("file://{}/", dir.display()), String::from)
}

/// An environment file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    /// It could not be read.
    #[error("cannot read environment file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not a valid environment.
    #[error("environment file {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
}

impl Environment {
    /// The embedded default: Debian 12 images (Gen1 and Gen2) under `state_dir/images`, which
    /// the QEMU host's fixture script builds, and every region a folder
    /// `state_dir/regions/NAME`.
    pub fn embedded_default(state_dir: &Path) -> Self {
        let images = state_dir.join("images");
        let debian = |sku: &str, file: &str, generation| PlatformImageEntry {
            publisher: "Debian".into(),
            offer: "debian-12".into(),
            sku: sku.into(),
            version: "1.0.0".into(),
            uri: images.join(file).display().to_string(),
            format: DiskFormat::Qcow2,
            sha256: None,
            os_type: OsType::Linux,
            hyper_v_generation: generation,
            security_type: SecurityType::Standard,
        };
        Self {
            state_dir: Some(state_dir.to_path_buf()),
            platform_images: vec![
                debian("12", "debian-12-gen1.qcow2", HyperVGeneration::V1),
                debian("12-gen2", "debian-12-gen2.qcow2", HyperVGeneration::V2),
            ],
            regions: BTreeMap::from([(
                ANY_REGION.to_owned(),
                format!(
                    "{}{REGION_PLACEHOLDER}",
                    directory_url(&state_dir.join("regions"))
                ),
            )]),
        }
    }

    /// Reads an environment file.
    pub fn from_file(path: &Path) -> Result<Self, EnvironmentError> {
        Self::from_file_with_host(path).map(|(environment, _)| environment)
    }

    /// Reads an environment file and the build host it names, if any.
    pub fn from_file_with_host(
        path: &Path,
    ) -> Result<(Self, Option<BuildHostEntry>), EnvironmentError> {
        let text = std::fs::read_to_string(path).map_err(|source| EnvironmentError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: EnvironmentFile =
            serde_json::from_str(&text).map_err(|e| EnvironmentError::Invalid {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        // Checked here, where the file can be named; a bad digest would otherwise surface
        // only as a mismatch at build time.
        for (i, entry) in file.platform_images.iter().enumerate() {
            if let Some(sha256) = entry.sha256.as_deref().filter(|d| !is_sha256_hex(d)) {
                return Err(EnvironmentError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "platformImages[{i}].sha256: '{sha256}' is not a sha256 checksum; expected 64 hex digits"
                    ),
                });
            }
        }
        let environment = Self {
            state_dir: file.state_dir,
            platform_images: file.platform_images,
            regions: file.regions,
        };
        Ok((environment, file.build_host))
    }

    /// The object store URL of region `name` (compared case-insensitively).
    ///
    /// # Errors
    /// [`UnknownRegion`] when neither the region nor `*` is listed.
    pub fn region_store(&self, name: &str) -> Result<String, UnknownRegion> {
        if let Some((_, url)) = self
            .regions
            .iter()
            .find(|(region, _)| *region != ANY_REGION && region.eq_ignore_ascii_case(name))
        {
            return Ok(url.clone());
        }
        let known = || {
            self.regions
                .keys()
                .filter(|k| *k != ANY_REGION)
                .cloned()
                .collect()
        };
        let Some(wildcard) = self.regions.get(ANY_REGION) else {
            return Err(UnknownRegion {
                region: name.to_owned(),
                reason: "has no object store in the environment".to_owned(),
                known: known(),
            });
        };
        // The name becomes part of a URL or path: only what region names are made of.
        let usable = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !usable {
            return Err(UnknownRegion {
                region: name.to_owned(),
                reason: "is not a region name (letters, digits, '-' and '_')".to_owned(),
                known: known(),
            });
        }
        Ok(wildcard.replace(REGION_PLACEHOLDER, &name.to_ascii_lowercase()))
    }

    /// The platform image catalog this environment describes.
    pub fn catalog(&self) -> InMemoryCatalog {
        let catalog = InMemoryCatalog::new();
        for entry in &self.platform_images {
            let disk = BaseDisk {
                location: entry.uri.clone(),
                format: entry.format,
                virtual_size: 0,
                sha256: entry.sha256.clone(),
                os_type: entry.os_type,
                hyper_v_generation: entry.hyper_v_generation,
                security_type: entry.security_type,
                exact_version: None,
            };
            catalog.add(
                &entry.publisher,
                &entry.offer,
                &entry.sku,
                &entry.version,
                disk,
            );
        }
        catalog
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_strict_and_name_the_problem() {
        let dir = std::env::temp_dir().join(format!("env-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("env.json");
        std::fs::write(&path, r#"{"platformImages": [{"publisher": "P", "offer": "O", "sku": "S", "version": "1.0.0", "uri": "/i.qcow2", "format": "qcow2"}], "regionz": {}}"#).unwrap();
        let err = Environment::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("unknown field `regionz`"), "{err}");
        std::fs::write(&path, r#"{"platformImages": [{"publisher": "P", "offer": "O", "sku": "S", "version": "1.0.0", "uri": "/i.qcow2", "format": "qcow2", "sha256": "abc"}]}"#).unwrap();
        let err = Environment::from_file(&path).unwrap_err().to_string();
        assert!(
            err.contains(
                "platformImages[0].sha256: 'abc' is not a sha256 checksum; expected 64 hex digits"
            ),
            "{err}"
        );
        std::fs::write(&path, r#"{"platformImages": [{"publisher": "P", "offer": "O", "sku": "S", "version": "1.0.0", "uri": "/i.qcow2", "format": "qcow2"}]}"#).unwrap();
        let env = Environment::from_file(&path).unwrap();
        assert_eq!(
            env.platform_images[0].hyper_v_generation,
            HyperVGeneration::V1
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn files_may_name_the_build_host_and_keep_every_environment_field() {
        let dir = std::env::temp_dir().join(format!("env-host-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("env.json");
        // Every field an Environment serializes is read back (the file type mirrors it).
        let mut value =
            serde_json::to_value(Environment::embedded_default(Path::new("/s"))).unwrap();
        value["buildHost"] = serde_json::json!({"type": "libvirt", "uri": "qemu+ssh://b@hv1/system", "network": "default"});
        std::fs::write(&path, value.to_string()).unwrap();
        let (env, host) = Environment::from_file_with_host(&path).unwrap();
        assert_eq!(env, Environment::embedded_default(Path::new("/s")));
        let host = host.unwrap();
        assert_eq!(
            (host.kind.as_str(), host.uri.as_deref()),
            ("libvirt", Some("qemu+ssh://b@hv1/system"))
        );
        assert_eq!(host.network.as_deref(), Some("default"));
        assert_eq!(Environment::from_file(&path).unwrap(), env);
        std::fs::write(&path, r#"{"buildHost": {"type": "libvirt", "urí": "x"}}"#).unwrap();
        let err = Environment::from_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("unknown field `urí`") && err.contains("line 1"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn the_default_catalog_serves_debian_for_both_generations() {
        use crate::source::PlatformImageCatalog;
        let env = Environment::embedded_default(Path::new("/state"));
        let gen2 = env
            .catalog()
            .versions("Debian", "debian-12", "12-gen2")
            .await
            .unwrap();
        assert_eq!(gen2[0].disk.hyper_v_generation, HyperVGeneration::V2);
        assert_eq!(gen2[0].disk.location, "/state/images/debian-12-gen2.qcow2");
    }

    #[test]
    fn regions_by_name_then_by_wildcard() {
        let mut env = Environment::embedded_default(Path::new("/state"));
        assert_eq!(
            env.region_store("WestEurope").unwrap(),
            "file:///state/regions/westeurope"
        );
        let err = env.region_store("../etc").unwrap_err().to_string();
        assert!(err.contains("is not a region name"), "{err}");
        assert!(env
            .region_store("*")
            .unwrap_err()
            .to_string()
            .contains("not a region name"));
        env.regions = BTreeMap::from([("eastus".to_owned(), "s3://east/images".to_owned())]);
        assert_eq!(env.region_store("EastUS").unwrap(), "s3://east/images");
        let err = env.region_store("westus").unwrap_err().to_string();
        assert_eq!(
            err,
            "region 'westus' has no object store in the environment; known regions: eastus"
        );
    }
}
