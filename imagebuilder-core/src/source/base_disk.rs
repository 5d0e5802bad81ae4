//! The resolved source of a build.

use serde::{Deserialize, Serialize};

use crate::template::model::{DiskFormat, HyperVGeneration, OsType, SecurityType};

/// A disk image a VM can boot, with what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseDisk {
    /// A local path or a URL (`file://`, `http(s)://`, `s3://`, `az://`, `gs://`).
    pub location: String,
    /// Format of the file.
    pub format: DiskFormat,
    /// Virtual size in bytes; 0 when not known until the file is read.
    pub virtual_size: u64,
    /// Expected sha256 of the file, when known.
    pub sha256: Option<String>,
    /// Operating system.
    pub os_type: OsType,
    /// How it boots; the output keeps it.
    pub hyper_v_generation: HyperVGeneration,
    /// Security type; TrustedLaunch and ConfidentialVM are refused as sources.
    pub security_type: SecurityType,
    /// The exact version a `latest` request resolved to, when the source is versioned.
    pub exact_version: Option<String>,
}
