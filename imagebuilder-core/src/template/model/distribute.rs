//! `properties.distribute[]`: where the one captured image goes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{wire_enum, OutputFormat};

/// One distribution target (`properties.distribute[i]`, discriminated by `type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum DistributorSpec {
    /// A managed image.
    ManagedImage(ManagedImageTarget),
    /// A version in a compute gallery, replicated to regions.
    SharedImage(SharedImageTarget),
    /// A VHD file or blob.
    #[serde(rename = "VHD")]
    Vhd(VhdTarget),
    /// An image file in any object store (`ObjectStore`, an extension of this library).
    ObjectStore(ObjectStoreTarget),
}

impl DistributorSpec {
    /// The target's `runOutputName`.
    pub fn run_output_name(&self) -> &str {
        match self {
            Self::ManagedImage(t) => &t.run_output_name,
            Self::SharedImage(t) => &t.run_output_name,
            Self::Vhd(t) => &t.run_output_name,
            Self::ObjectStore(t) => &t.run_output_name,
        }
    }
}

/// `ManagedImage` distributor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedImageTarget {
    /// Unique name of this target's run output.
    pub run_output_name: String,
    /// Tags applied to the created image.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub artifact_tags: BTreeMap<String, String>,
    /// `/subscriptions/S/resourceGroups/R/providers/Microsoft.Compute/images/N`.
    pub image_id: String,
    /// Region of the image.
    pub location: String,
}

/// `SharedImage` distributor (Azure Compute Gallery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedImageTarget {
    /// Unique name of this target's run output.
    pub run_output_name: String,
    /// Tags applied to the created version.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub artifact_tags: BTreeMap<String, String>,
    /// Image definition id (automatic version) or `.../versions/x.y.z` (explicit version).
    pub gallery_image_id: String,
    /// Regions to replicate to, each with its replica count and storage type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_regions: Option<Vec<TargetRegion>>,
    /// Deprecated form of `targetRegions`; mutually exclusive with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_regions: Option<Vec<String>>,
    /// Deprecated; only with `replicationRegions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_account_type: Option<StorageAccountType>,
    /// Keep this version from becoming the definition's `latest`.
    pub exclude_from_latest: bool,
    /// How the version number is chosen for a definition id; `Latest` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versioning: Option<Versioning>,
    /// Replication mode (api-version 2025-10-01); `Full` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_mode: Option<ReplicationMode>,
    /// When the version stops being supported, `YYYY-MM-DD` or an RFC 3339 time (an
    /// extension: a gallery version property AIB does not expose).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_of_life_date: Option<String>,
}

impl SharedImageTarget {
    /// The versioning scheme in effect: the one given, else `Latest` without a major.
    pub fn effective_versioning(&self) -> Versioning {
        self.versioning.unwrap_or(Versioning::Latest { major: -1 })
    }
}

/// One entry of `targetRegions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRegion {
    /// Region name.
    pub name: String,
    /// Replicas in that region, at least 1 (default 1).
    pub replica_count: u32,
    /// Storage type of the replicas (default `Standard_LRS`).
    pub storage_account_type: StorageAccountType,
}

wire_enum! {
    /// Storage type of gallery replicas.
    pub enum StorageAccountType {
        /// Locally redundant standard storage (default).
        StandardLrs = "Standard_LRS",
        /// Zone-redundant standard storage.
        StandardZrs = "Standard_ZRS",
        /// Locally redundant premium storage.
        PremiumLrs = "Premium_LRS",
    }
}

wire_enum! {
    /// How a gallery version is replicated (api-version 2025-10-01).
    pub enum ReplicationMode {
        /// Full copies (default).
        Full = "Full",
        /// Shallow copies, faster to publish.
        Shallow = "Shallow",
    }
}

wire_enum! {
    /// The `scheme` of `versioning`.
    pub enum VersioningScheme {
        /// A version newer than every existing one.
        Latest = "Latest",
        /// The source gallery image's version.
        Source = "Source",
    }
}

/// How the version number of an automatically versioned gallery image is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "scheme")]
pub enum Versioning {
    /// A version newer than every existing one, optionally within one major version.
    Latest {
        /// Major version to stay within; -1 means any.
        major: i64,
    },
    /// The version of the source gallery image.
    Source,
}

/// `VHD` distributor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VhdTarget {
    /// Unique name of this target's run output.
    pub run_output_name: String,
    /// Tags recorded with the VHD.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub artifact_tags: BTreeMap<String, String>,
    /// Where to write the VHD; empty means the template's staging area.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uri: String,
    /// Whether the run output carries the file's sha256 (an extension field). Off by default,
    /// like AIB's run outputs: hashing every byte of a fixed VHD, zeros included, costs
    /// several times writing it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sha256: bool,
}

/// `ObjectStore` distributor (an extension of this library): the image as one file in any
/// object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreTarget {
    /// Unique name of this target's run output.
    pub run_output_name: String,
    /// Tags recorded with the file.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub artifact_tags: BTreeMap<String, String>,
    /// Where the file goes: `file://`, `s3://`, `az://`, `gs://` or an Azure blob URL.
    pub uri: String,
    /// Format of the file.
    pub format: OutputFormat,
    /// Whether the run output carries the file's sha256. Off by default (see
    /// [`VhdTarget::sha256`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sha256: bool,
}
