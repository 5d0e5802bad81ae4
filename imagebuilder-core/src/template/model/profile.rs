//! Build-VM profile, error handling, optimization and the other top-level settings.

use serde::Serialize;

use super::{wire_enum, FeatureState};

/// `properties.vmProfile`: the build VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VmProfile {
    /// VM size; empty means `Standard_D1_v2` for Gen1 and `Standard_D2ds_v4` for Gen2 sources.
    pub vm_size: String,
    /// OS disk size in GiB; 0 keeps the source's size. It can only grow.
    #[serde(rename = "osDiskSizeGB")]
    pub os_disk_size_gb: u32,
    /// Identities (ARM ids) given to the build and validation VMs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_assigned_identities: Vec<String>,
    /// Network of the build VM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vnet_config: Option<VnetConfig>,
}

impl VmProfile {
    /// AIB's default VM size for Gen1 sources.
    pub const DEFAULT_GEN1_VM_SIZE: &'static str = "Standard_D1_v2";
    /// AIB's default VM size for Gen2 sources.
    pub const DEFAULT_GEN2_VM_SIZE: &'static str = "Standard_D2ds_v4";
}

/// `vmProfile.vnetConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VnetConfig {
    /// Subnet of the build VM (`.../virtualNetworks/V/subnets/N`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet_id: String,
    /// Subnet of the isolated-build container (2024-02-01); needs `subnetId`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container_instance_subnet_id: String,
    /// Size of the proxy VM; not with `containerInstanceSubnetId`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_vm_size: String,
}

wire_enum! {
    /// What happens to the build VM when a phase fails.
    pub enum OnError {
        /// Delete the build VM and its resources (default).
        Cleanup = "cleanup",
        /// Keep them for debugging; the user cleans up.
        Abort = "abort",
    }
}

/// `properties.errorHandling` (api-version 2023-07-01 and later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorHandling {
    /// When a customizer fails.
    pub on_customizer_error: OnError,
    /// When a validator fails.
    pub on_validation_error: OnError,
}

impl Default for ErrorHandling {
    fn default() -> Self {
        Self {
            on_customizer_error: OnError::Cleanup,
            on_validation_error: OnError::Cleanup,
        }
    }
}

/// `properties.optimize`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Optimize {
    /// Optimize the image for faster VM boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_boot: Option<VmBootOptimization>,
    /// Workload optimization script (api-version 2025-10-01).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadOptimization>,
}

/// `optimize.vmBoot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmBootOptimization {
    /// Whether boot optimization runs.
    pub state: FeatureState,
}

/// `optimize.workload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadOptimization {
    /// Whether workload optimization runs.
    pub state: FeatureState,
    /// Optimization script.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub script_uri: String,
    /// sha256 of the script, 64 hex digits; empty means unchecked.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sha256_checksum: String,
}

/// `properties.autoRun` (api-version 2024-02-01 and later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutoRun {
    /// Run the build once when the template is created or updated.
    pub state: FeatureState,
}

/// One entry of `properties.additionalDataDisks` (api-version 2025-10-01).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataDisk {
    /// Size in GiB.
    #[serde(rename = "sizeGB")]
    pub size_gb: u32,
}
