//! Run outputs: what each distributor published.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One published artifact (`runOutputs/{runOutputName}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOutput {
    /// The distribute target's `runOutputName`.
    pub run_output_name: String,
    /// Id of the artifact: an image id, a gallery version id, or the VHD's URI.
    pub artifact_id: String,
    /// Where the artifact's bytes can be read, when it has such a place (a VHD's URI).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_uri: String,
    /// sha256 of the published disk, 64 lower-case hex digits; empty when the target
    /// computes none (`VHD` and `ObjectStore` targets unless they set `sha256: true`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// Size of the published disk in bytes.
    pub size: u64,
    /// Tags applied to the artifact.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}
