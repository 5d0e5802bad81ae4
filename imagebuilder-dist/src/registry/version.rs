//! Gallery version numbers `x.y.z` and how an automatic one is chosen.

use std::fmt;
use std::str::FromStr;

use imagebuilder_core::template::model::Versioning;

/// A gallery image version `major.minor.patch`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageVersion {
    /// Major part.
    pub major: u32,
    /// Minor part.
    pub minor: u32,
    /// Patch part.
    pub patch: u32,
}

impl FromStr for ImageVersion {
    type Err = String;

    /// Three decimal numbers that each fit in an `int32`, as Azure requires.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("'{text}' is not a gallery image version; expected x.y.z (three numbers, each at most {})", i32::MAX)
        };
        let parts: Vec<&str> = text.split('.').collect();
        let [major, minor, patch] = parts.as_slice() else {
            return Err(bad());
        };
        let number = |part: &str| -> Result<u32, String> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<i32>()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(bad)
        };
        Ok(Self {
            major: number(major)?,
            minor: number(minor)?,
            patch: number(patch)?,
        })
    }
}

impl fmt::Display for ImageVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The version an automatically versioned publish gets.
///
/// - `Latest` without a major: one patch above the highest existing version; `1.0.0` when
///   there is none.
/// - `Latest` with major `m`: one patch above the highest version whose major is `m`;
///   `m.0.0` when there is none. (AIB's example: with 2.1.0, 1.2.0 and 0.1.2 present, no
///   major or 2 gives 2.1.1, 1 gives 1.2.1, 0 gives 0.1.3.)
/// - `Source`: the source image's version, which must be `x.y.z`.
///
/// `taken` holds every existing version, including ones being published right now.
///
/// # Errors
/// A message when `Source` has no usable source version or the patch number would overflow.
pub fn next_version(
    taken: &[ImageVersion],
    versioning: Versioning,
    source_version: Option<&str>,
) -> Result<ImageVersion, String> {
    match versioning {
        Versioning::Latest { major } => {
            let major = u32::try_from(major).ok();
            let highest = taken
                .iter()
                .filter(|v| major.is_none_or(|m| v.major == m))
                .max();
            match highest {
                Some(v) => {
                    let patch = v
                        .patch
                        .checked_add(1)
                        .filter(|p| i32::try_from(*p).is_ok())
                        .ok_or_else(|| format!("version {v} has the highest patch number a version may have; publish under a new major or minor version"))?;
                    Ok(ImageVersion { patch, ..*v })
                }
                None => Ok(ImageVersion {
                    major: major.unwrap_or(1),
                    minor: 0,
                    patch: 0,
                }),
            }
        }
        Versioning::Source => {
            let source = source_version.ok_or_else(|| {
                "versioning scheme 'Source' needs a source image with a version (a PlatformImage or SharedImageVersion source); this build's source has none".to_owned()
            })?;
            source.parse().map_err(|e| {
                format!("versioning scheme 'Source': the source version cannot be used: {e}")
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> ImageVersion {
        text.parse().unwrap()
    }

    #[test]
    fn parse_checks_three_int32_numbers() {
        assert_eq!(
            v("1.2.3"),
            ImageVersion {
                major: 1,
                minor: 2,
                patch: 3
            }
        );
        assert_eq!(v("2147483647.0.0").major, 2_147_483_647);
        for bad in [
            "1.2",
            "1.2.3.4",
            "1..3",
            "a.b.c",
            "-1.0.0",
            "+1.0.0",
            "2147483648.0.0",
            "latest",
        ] {
            assert!(bad.parse::<ImageVersion>().is_err(), "{bad}");
        }
        assert!(v("1.10.0") > v("1.9.9"));
    }

    #[test]
    fn latest_follows_the_documented_example() {
        let taken = [v("2.1.0"), v("1.2.0"), v("0.1.2"), v("1.0.5")];
        let next = |major| next_version(&taken, Versioning::Latest { major }, None).unwrap();
        assert_eq!(next(-1), v("2.1.1"));
        assert_eq!(next(2), v("2.1.1"));
        assert_eq!(next(1), v("1.2.1"));
        assert_eq!(next(0), v("0.1.3"));
        assert_eq!(next(7), v("7.0.0"));
        assert_eq!(
            next_version(&[], Versioning::Latest { major: -1 }, None).unwrap(),
            v("1.0.0")
        );
    }

    #[test]
    fn latest_refuses_to_overflow() {
        let full = [v(&format!("1.0.{}", i32::MAX))];
        assert!(next_version(&full, Versioning::Latest { major: -1 }, None).is_err());
    }

    #[test]
    fn source_takes_the_source_version() {
        assert_eq!(
            next_version(&[], Versioning::Source, Some("12.20240101.3")).unwrap(),
            v("12.20240101.3")
        );
        let none = next_version(&[], Versioning::Source, None).unwrap_err();
        assert!(
            none.contains("needs a source image with a version"),
            "{none}"
        );
        assert!(next_version(&[], Versioning::Source, Some("1.2.3.4")).is_err());
    }
}
