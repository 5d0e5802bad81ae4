//! The records the registries keep, as JSON files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use imagebuilder_core::template::model::{
    DiskFormat, HyperVGeneration, OsType, SecurityType, StorageAccountType,
};

/// A compute gallery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gallery {
    /// Its ARM id.
    pub id: String,
    /// Its region.
    pub location: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// When it was made (RFC 3339).
    pub created: String,
}

/// Whether a definition's images are generalized (deprovisioned) or specialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OsState {
    /// Generalized: what image builds produce.
    Generalized,
    /// Specialized: a copy of one machine.
    Specialized,
}

/// A gallery image definition: what every version of it has in common.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDefinition {
    /// Its ARM id.
    pub id: String,
    /// Publisher, e.g. `Contoso`.
    pub publisher: String,
    /// Offer.
    pub offer: String,
    /// Sku.
    pub sku: String,
    /// Operating system of every version.
    pub os_type: OsType,
    /// Generalized or specialized.
    pub os_state: OsState,
    /// Generation of every version.
    pub hyper_v_generation: HyperVGeneration,
    /// Security type of every version.
    pub security_type: SecurityType,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// When it was made (RFC 3339).
    pub created: String,
}

/// One region's copy of a published disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replica {
    /// The region.
    pub region: String,
    /// Where the disk is.
    pub uri: String,
    /// sha256 of the disk file.
    pub sha256: String,
    /// Size of the disk file in bytes.
    pub size: u64,
    /// Replicas asked for in the region (recorded; one copy serves them all).
    pub replica_count: u32,
    /// Storage type asked for (recorded).
    pub storage_account_type: StorageAccountType,
}

/// A complete gallery image version. It exists exactly when this record does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionManifest {
    /// Its ARM id.
    pub id: String,
    /// `x.y.z`.
    pub version: String,
    /// When publishing finished (RFC 3339).
    pub published: String,
    /// Whether `latest` skips it.
    #[serde(default)]
    pub exclude_from_latest: bool,
    /// When it stops being supported, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_of_life_date: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Format of every replica's file.
    pub format: DiskFormat,
    /// Virtual size of the disk in bytes.
    pub virtual_size: u64,
    /// The source image's version, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// One entry per target region.
    pub replicas: Vec<Replica>,
}

/// A managed image: one disk in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedImage {
    /// Its ARM id.
    pub id: String,
    /// Its region.
    pub location: String,
    /// Operating system.
    pub os_type: OsType,
    /// Generation.
    pub hyper_v_generation: HyperVGeneration,
    /// Security type.
    pub security_type: SecurityType,
    /// Where the disk is.
    pub uri: String,
    /// Format of the disk file.
    pub format: DiskFormat,
    /// sha256 of the disk file.
    pub sha256: String,
    /// Size of the disk file in bytes.
    pub size: u64,
    /// Virtual size of the disk in bytes.
    pub virtual_size: u64,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// When it was made (RFC 3339).
    pub created: String,
}
