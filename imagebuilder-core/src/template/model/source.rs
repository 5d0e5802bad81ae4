//! `properties.source`: the image a build starts from.

use serde::Serialize;

use super::{DiskFormat, HyperVGeneration, OsType, SecurityType};

/// Where the build VM's disk comes from (`properties.source`, discriminated by `type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum SourceSpec {
    /// A marketplace image named by publisher, offer, sku and version.
    PlatformImage(PlatformImageSource),
    /// A managed image named by its ARM id.
    ManagedImage(ManagedImageSource),
    /// A version of an image in a compute gallery.
    SharedImageVersion(SharedImageVersionSource),
    /// Extension of this library: an image file or URL named directly.
    DiskImage(DiskImageSource),
}

/// A marketplace image (`PlatformImage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformImageSource {
    /// Image publisher, e.g. `Canonical`.
    pub publisher: String,
    /// Image offer, e.g. `0001-com-ubuntu-server-jammy`.
    pub offer: String,
    /// Image sku, e.g. `22_04-lts-gen2`.
    pub sku: String,
    /// `x.y.z` or `latest`; `latest` is resolved at build time, not at submit time.
    pub version: String,
    /// Purchase plan of a marketplace image that has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_info: Option<PlanInfo>,
    /// The version `latest` resolved to in the last build (read-only in AIB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_version: Option<String>,
}

/// Purchase plan of a marketplace image; all three fields are required when given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanInfo {
    /// Plan name.
    pub plan_name: String,
    /// Plan product.
    pub plan_product: String,
    /// Plan publisher.
    pub plan_publisher: String,
}

/// A managed image (`ManagedImage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedImageSource {
    /// `/subscriptions/S/resourceGroups/R/providers/Microsoft.Compute/images/N`.
    pub image_id: String,
}

/// A gallery image version (`SharedImageVersion`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedImageVersionSource {
    /// `.../galleries/G/images/D/versions/V` where V is `x.y.z` or `latest`.
    pub image_version_id: String,
    /// The version `latest` resolved to in the last build (read-only in AIB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_version: Option<String>,
}

/// An image file or URL (`DiskImage`, an extension of this library; AIB has no such type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskImageSource {
    /// `file://`, `http(s)://`, `s3://`, `az://` or `gs://` URL, or a local path.
    pub uri: String,
    /// Format of the file; detected from its contents when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<DiskFormat>,
    /// Expected sha256 of the file, 64 hex digits; empty means unchecked.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sha256_checksum: String,
    /// Operating system of the image; Linux when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_type: Option<OsType>,
    /// How the image boots; V1 when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hyper_v_generation: Option<HyperVGeneration>,
    /// Security type of the image; Standard when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_type: Option<SecurityType>,
}
