//! Typed model of an AIB `Microsoft.VirtualMachineImages/imageTemplates` resource.
//!
//! Values hold AIB's defaults where AIB has one (`buildTimeoutInMinutes: 0`, `vmSize: ""`,
//! `replicaCount: 1`, ...), and `effective_*` methods give what those defaults mean.
//! Serializing a value gives the JSON AIB accepts; [`crate::template::parse_document`] reads it
//! back to an equal value.

mod common;
mod customize;
mod distribute;
mod profile;
mod source;
mod validate;
mod wire_enum;

use std::collections::BTreeMap;

use serde::Serialize;

pub use common::{DiskFormat, FeatureState, HyperVGeneration, OsType, OutputFormat, SecurityType};
pub use customize::{
    CustomizerSpec, FileStep, PowerShellStep, RestartStep, Script, ShellStep, WindowsUpdateStep,
};
pub use distribute::{
    DistributorSpec, ManagedImageTarget, ObjectStoreTarget, ReplicationMode, SharedImageTarget,
    StorageAccountType, TargetRegion, Versioning, VersioningScheme, VhdTarget,
};
pub use profile::{
    AutoRun, DataDisk, ErrorHandling, OnError, Optimize, VmBootOptimization, VmProfile, VnetConfig,
    WorkloadOptimization,
};
pub use source::{
    DiskImageSource, ManagedImageSource, PlanInfo, PlatformImageSource, SharedImageVersionSource,
    SourceSpec,
};
pub use validate::{Validation, ValidatorSpec};
pub(crate) use wire_enum::wire_enum;
pub use wire_enum::WireEnum;

use super::ApiVersion;

/// The ARM resource type of an image template.
pub const RESOURCE_TYPE: &str = "Microsoft.VirtualMachineImages/imageTemplates";

/// An image template: the resource envelope and its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTemplate {
    /// The api-version the document was written for; decides case-sensitivity.
    pub api_version: ApiVersion,
    /// Resource name (`^[A-Za-z0-9-_.]{1,64}$`), when the document gave one.
    pub name: Option<String>,
    /// Region of the template resource, when the document gave one.
    pub location: Option<String>,
    /// Resource tags.
    pub tags: BTreeMap<String, String>,
    /// The template's identity, used to read scripts and write images.
    pub identity: Option<Identity>,
    /// What to build and where to put it.
    pub properties: ImageTemplateProperties,
    /// The values of the deployment's secure parameters (`secureString`, `secureObject`)
    /// this template was evaluated with. Never serialized; the engine scrubs them from its
    /// log, events and report.
    pub secrets: Vec<String>,
}

impl Serialize for ImageTemplate {
    /// Serializes as a resource object, the shape AIB's REST API returns.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Envelope<'a> {
            #[serde(rename = "type")]
            resource_type: &'static str,
            api_version: ApiVersion,
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            location: Option<&'a str>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            tags: &'a BTreeMap<String, String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            identity: Option<&'a Identity>,
            properties: &'a ImageTemplateProperties,
        }
        Envelope {
            resource_type: RESOURCE_TYPE,
            api_version: self.api_version,
            name: self.name.as_deref(),
            location: self.location.as_deref(),
            tags: &self.tags,
            identity: self.identity.as_ref(),
            properties: &self.properties,
        }
        .serialize(serializer)
    }
}

/// `properties` of an image template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageTemplateProperties {
    /// The image the build starts from.
    pub source: SourceSpec,
    /// Customization steps, run in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub customize: Vec<CustomizerSpec>,
    /// Validation of the built image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validate: Option<Validation>,
    /// Where the captured image goes; at least one target.
    pub distribute: Vec<DistributorSpec>,
    /// Deadline over all phases in minutes, 0..960; 0 means 240.
    pub build_timeout_in_minutes: u32,
    /// The build VM.
    pub vm_profile: VmProfile,
    /// ARM id of the staging resource group; generated when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staging_resource_group: Option<String>,
    /// What to do with the build VM when a phase fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_handling: Option<ErrorHandling>,
    /// Image optimization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimize: Option<Optimize>,
    /// Build once on creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_run: Option<AutoRun>,
    /// Tags for the staging resources.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub managed_resource_tags: BTreeMap<String, String>,
    /// Extra data disks added to the image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_data_disks: Vec<DataDisk>,
}

impl ImageTemplateProperties {
    /// The timeout AIB uses when `buildTimeoutInMinutes` is 0.
    pub const DEFAULT_BUILD_TIMEOUT_MINUTES: u32 = 240;

    /// The build deadline in minutes: `buildTimeoutInMinutes`, or 240 when it is 0.
    pub fn effective_build_timeout_minutes(&self) -> u32 {
        match self.build_timeout_in_minutes {
            0 => Self::DEFAULT_BUILD_TIMEOUT_MINUTES,
            minutes => minutes,
        }
    }

    /// The error handling in effect: the one given, else `cleanup` for both phases.
    pub fn effective_error_handling(&self) -> ErrorHandling {
        self.error_handling.clone().unwrap_or_default()
    }
}

wire_enum! {
    /// `identity.type`.
    pub enum IdentityType {
        /// The identities listed in `userAssignedIdentities`.
        UserAssigned = "UserAssigned",
        /// No identity.
        None = "None",
    }
}

/// `identity` of the template resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// `UserAssigned` or `None`.
    #[serde(rename = "type")]
    pub identity_type: IdentityType,
    /// ARM ids of user-assigned identities; AIB supports a single one.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_identity_map"
    )]
    pub user_assigned_identities: Vec<String>,
}

/// ARM writes the identity list as a map from id to an (empty) object.
fn serialize_identity_map<S: serde::Serializer>(
    ids: &[String],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(ids.len()))?;
    for id in ids {
        map.serialize_entry(id, &serde_json::Map::new())?;
    }
    map.end()
}
