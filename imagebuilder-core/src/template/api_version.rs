//! The api-versions of `Microsoft.VirtualMachineImages/imageTemplates` and what each changed.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// An api-version of the imageTemplates resource, oldest first (the order is meaningful).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// Deprecated but still accepted by AIB.
    V2019_05_01Preview,
    /// Sources, customizers and distributors of the first stable release.
    V2020_02_14,
    /// Build-VM identities; wrapped error schema.
    V2021_10_01,
    /// `validate`, `stagingResourceGroup`.
    V2022_02_14,
    /// `versioning`, `targetRegions`, File validator, VHD `uri`, `optimize`.
    V2022_07_01,
    /// `errorHandling`.
    V2023_07_01,
    /// `autoRun`, `managedResourceTags`, `containerInstanceSubnetId`; case-sensitive field
    /// names and rejection of unknown fields.
    V2024_02_01,
    /// `additionalDataDisks`, `optimize.workload`, `replicationMode`.
    V2025_10_01,
}

impl ApiVersion {
    /// Every version, oldest first.
    pub const ALL: [ApiVersion; 8] = [
        Self::V2019_05_01Preview,
        Self::V2020_02_14,
        Self::V2021_10_01,
        Self::V2022_02_14,
        Self::V2022_07_01,
        Self::V2023_07_01,
        Self::V2024_02_01,
        Self::V2025_10_01,
    ];

    /// The newest version; used for documents that do not name one.
    pub const LATEST: ApiVersion = Self::V2025_10_01;

    /// The version string as ARM spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2019_05_01Preview => "2019-05-01-preview",
            Self::V2020_02_14 => "2020-02-14",
            Self::V2021_10_01 => "2021-10-01",
            Self::V2022_02_14 => "2022-02-14",
            Self::V2022_07_01 => "2022-07-01",
            Self::V2023_07_01 => "2023-07-01",
            Self::V2024_02_01 => "2024-02-01",
            Self::V2025_10_01 => "2025-10-01",
        }
    }

    /// From 2024-02-01 AIB matches field names case-sensitively and rejects unknown fields.
    pub fn is_strict(self) -> bool {
        self >= Self::V2024_02_01
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text named no api-version this library knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown api-version '{0}'; expected one of {list}", list = known_list())]
pub struct UnknownApiVersion(pub String);

fn known_list() -> String {
    let names: Vec<&str> = ApiVersion::ALL.iter().map(|v| v.as_str()).collect();
    names.join(", ")
}

impl FromStr for ApiVersion {
    type Err = UnknownApiVersion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownApiVersion(text.to_owned()))
    }
}

impl Serialize for ApiVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        for v in ApiVersion::ALL {
            assert_eq!(v.as_str().parse::<ApiVersion>(), Ok(v));
        }
        assert!(ApiVersion::V2020_02_14 < ApiVersion::V2024_02_01);
        assert!(!ApiVersion::V2023_07_01.is_strict());
        assert!(ApiVersion::V2024_02_01.is_strict());
        let err = "2021-01-01".parse::<ApiVersion>().unwrap_err();
        assert!(err.to_string().contains("2020-02-14, 2021-10-01"), "{err}");
    }
}
