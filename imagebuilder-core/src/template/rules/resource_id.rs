//! Shapes of the ARM resource ids a template names. Only the segment structure is checked:
//! names may be placeholders such as `<rgName>`, as in AIB's published samples.

use super::text::{is_gallery_version, is_placeholder};

/// A kind of ARM resource id a template field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceIdShape {
    /// `/subscriptions/S/resourceGroups/R`.
    ResourceGroup,
    /// `.../providers/Microsoft.Compute/images/N`.
    ManagedImage,
    /// `.../providers/Microsoft.Compute/galleries/G`.
    Gallery,
    /// `.../galleries/G/images/D` or `.../galleries/G/images/D/versions/x.y.z`.
    GalleryImage,
    /// `.../galleries/G/images/D/versions/V` (V is `x.y.z` or `latest`), or a direct shared
    /// or community gallery version `/sharedGalleries/G/images/D/versions/V`.
    GalleryImageVersion,
    /// `.../providers/Microsoft.Network/virtualNetworks/V/subnets/N`.
    Subnet,
    /// `.../providers/Microsoft.ManagedIdentity/userAssignedIdentities/N`.
    UserAssignedIdentity,
}

/// `{name}` stands for any non-empty segment; everything else must match (case-insensitively,
/// as ARM ids are).
const RESOURCE_GROUP: &[&str] = &[
    "subscriptions",
    "{subscriptionId}",
    "resourceGroups",
    "{resourceGroup}",
];
const MANAGED_IMAGE: &[&str] = &["providers", "Microsoft.Compute", "images", "{imageName}"];
const GALLERY: &[&str] = &[
    "providers",
    "Microsoft.Compute",
    "galleries",
    "{galleryName}",
];
const GALLERY_IMAGE: &[&str] = &[
    "providers",
    "Microsoft.Compute",
    "galleries",
    "{galleryName}",
    "images",
    "{imageDefinition}",
];
const VERSION: &[&str] = &["versions", "{version}"];
const SUBNET: &[&str] = &[
    "providers",
    "Microsoft.Network",
    "virtualNetworks",
    "{vnetName}",
    "subnets",
    "{subnetName}",
];
const IDENTITY: &[&str] = &[
    "providers",
    "Microsoft.ManagedIdentity",
    "userAssignedIdentities",
    "{identityName}",
];
const SHARED_GALLERY: &[&str] = &[
    "sharedGalleries",
    "{galleryUniqueName}",
    "images",
    "{imageDefinition}",
];
const COMMUNITY_GALLERY: &[&str] = &[
    "communityGalleries",
    "{galleryPublicName}",
    "images",
    "{imageDefinition}",
];

impl ResourceIdShape {
    /// The accepted forms, as segment lists after the leading `/`.
    fn forms(self) -> Vec<Vec<&'static str>> {
        let under_group = |tail: &[&'static str]| [RESOURCE_GROUP, tail].concat();
        match self {
            Self::ResourceGroup => vec![RESOURCE_GROUP.to_vec()],
            Self::ManagedImage => vec![under_group(MANAGED_IMAGE)],
            Self::Gallery => vec![under_group(GALLERY)],
            Self::GalleryImage => vec![
                under_group(GALLERY_IMAGE),
                [under_group(GALLERY_IMAGE).as_slice(), VERSION].concat(),
            ],
            Self::GalleryImageVersion => vec![
                [under_group(GALLERY_IMAGE).as_slice(), VERSION].concat(),
                [SHARED_GALLERY, VERSION].concat(),
                [COMMUNITY_GALLERY, VERSION].concat(),
            ],
            Self::Subnet => vec![under_group(SUBNET)],
            Self::UserAssignedIdentity => vec![under_group(IDENTITY)],
        }
    }

    /// The expected form(s), for error messages.
    pub fn describe(self) -> String {
        let forms: Vec<String> = self
            .forms()
            .iter()
            .map(|segments| format!("/{}", segments.join("/")))
            .collect();
        forms.join(" or ")
    }

    /// Checks that `id` has this shape. On mismatch, says what was expected.
    pub fn check(self, id: &str) -> Result<(), String> {
        let matched = self
            .forms()
            .into_iter()
            .find_map(|form| match_form(id, &form));
        let Some(values) = matched else {
            return Err(format!(
                "'{id}' is not an ARM id of the form {}",
                self.describe()
            ));
        };
        if let Some(version) = values.version {
            let latest_allowed = self == Self::GalleryImageVersion;
            let ok = is_gallery_version(version)
                || is_placeholder(version)
                || (latest_allowed && version.eq_ignore_ascii_case("latest"));
            if !ok {
                let expected = if latest_allowed {
                    "'x.y.z' or 'latest'"
                } else {
                    "'x.y.z'"
                };
                return Err(format!(
                    "version '{version}' in '{id}' is not valid; expected {expected}"
                ));
            }
        }
        Ok(())
    }
}

/// The variable segments of a matched id that need a closer look.
struct MatchedValues<'a> {
    version: Option<&'a str>,
}

fn match_form<'a>(id: &'a str, form: &[&str]) -> Option<MatchedValues<'a>> {
    let rest = id.strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() != form.len() {
        return None;
    }
    let mut version = None;
    for (segment, expected) in segments.iter().zip(form) {
        if expected.starts_with('{') {
            if segment.is_empty() {
                return None;
            }
            if *expected == "{version}" {
                version = Some(*segment);
            }
        } else if !segment.eq_ignore_ascii_case(expected) {
            return None;
        }
    }
    Some(MatchedValues { version })
}

/// The parts of a gallery image id (definition, optionally with a version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GalleryImageId {
    /// Subscription id.
    pub subscription: String,
    /// Resource group name.
    pub resource_group: String,
    /// Gallery name.
    pub gallery: String,
    /// Image definition name.
    pub image: String,
    /// Version name, when the id names one.
    pub version: Option<String>,
}

impl GalleryImageId {
    /// Splits a `.../galleries/G/images/D[/versions/V]` id into its names.
    pub fn parse(id: &str) -> Option<Self> {
        ResourceIdShape::GalleryImage.check(id).ok()?;
        let segments: Vec<&str> = id.trim_start_matches('/').split('/').collect();
        Some(Self {
            subscription: segments[1].to_owned(),
            resource_group: segments[3].to_owned(),
            gallery: segments[7].to_owned(),
            image: segments[9].to_owned(),
            version: segments.get(11).map(|v| (*v).to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GALLERY: &str = "/subscriptions/<subscriptionID>/resourceGroups/<rgName>/providers/Microsoft.Compute/galleries/myGallery/images/ubuntu";

    #[test]
    fn accepts_placeholders_and_any_case() {
        assert_eq!(ResourceIdShape::GalleryImage.check(GALLERY), Ok(()));
        assert_eq!(
            ResourceIdShape::ManagedImage
                .check("/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/images/img"),
            Ok(())
        );
        assert_eq!(
            ResourceIdShape::ResourceGroup.check("/subscriptions/s/resourceGroups/rg"),
            Ok(())
        );
    }

    #[test]
    fn gallery_versions() {
        let explicit = format!("{GALLERY}/versions/1.2.3");
        assert_eq!(ResourceIdShape::GalleryImage.check(&explicit), Ok(()));
        let latest = format!("{GALLERY}/versions/latest");
        assert!(ResourceIdShape::GalleryImage.check(&latest).is_err());
        assert_eq!(ResourceIdShape::GalleryImageVersion.check(&latest), Ok(()));
        assert!(ResourceIdShape::GalleryImageVersion.check(GALLERY).is_err());
        assert_eq!(
            ResourceIdShape::GalleryImageVersion
                .check("/sharedGalleries/abc-123/images/ubuntu/versions/1.0.0"),
            Ok(())
        );
        let err = ResourceIdShape::GalleryImage
            .check(&format!("{GALLERY}/versions/1.2"))
            .unwrap_err();
        assert!(err.contains("version '1.2'"), "{err}");
    }

    #[test]
    fn rejects_wrong_structure_with_the_expected_form() {
        let err = ResourceIdShape::ManagedImage
            .check("/subscriptions/s/resourceGroups/rg/images/img")
            .unwrap_err();
        assert!(
            err.contains("/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.Compute/images/{imageName}"),
            "{err}"
        );
        assert!(ResourceIdShape::Subnet.check("").is_err());
        assert!(ResourceIdShape::UserAssignedIdentity
            .check("/subscriptions/s/resourceGroups//providers/Microsoft.ManagedIdentity/userAssignedIdentities/x")
            .is_err());
    }

    #[test]
    fn gallery_ids_split_into_names() {
        let id = GalleryImageId::parse(&format!("{GALLERY}/versions/1.0.0")).unwrap();
        assert_eq!(id.gallery, "myGallery");
        assert_eq!(id.image, "ubuntu");
        assert_eq!(id.version.as_deref(), Some("1.0.0"));
        assert_eq!(GalleryImageId::parse(GALLERY).unwrap().version, None);
    }
}
