//! The ARM ids of galleries, image definitions, versions and managed images.

use std::fmt;

use imagebuilder_core::template::rules::{GalleryImageId, ResourceIdShape};

use super::version::ImageVersion;
use super::RegistryError;

/// `/subscriptions/S/resourceGroups/R/providers/Microsoft.Compute/galleries/G`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GalleryId {
    /// Subscription id.
    pub subscription: String,
    /// Resource group name.
    pub resource_group: String,
    /// Gallery name.
    pub gallery: String,
}

/// A gallery image definition: `<gallery id>/images/D`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionId {
    /// The gallery.
    pub gallery: GalleryId,
    /// The definition's name.
    pub image: String,
}

/// What a `SharedImage` target's `galleryImageId` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionTarget {
    /// The definition: the version number is chosen by `versioning`.
    Automatic(DefinitionId),
    /// An explicit version, which must not exist yet.
    Explicit(DefinitionId, ImageVersion),
}

/// `/subscriptions/S/resourceGroups/R/providers/Microsoft.Compute/images/N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedImageId {
    /// Subscription id.
    pub subscription: String,
    /// Resource group name.
    pub resource_group: String,
    /// Image name.
    pub name: String,
}

fn bad(id: &str, shape: ResourceIdShape) -> RegistryError {
    RegistryError::BadId {
        id: id.to_owned(),
        expected: format!("an ARM id of the form {}", shape.describe()),
    }
}

/// The names of an id of `shape`, in order (the fixed segments dropped).
fn names(id: &str, shape: ResourceIdShape) -> Result<Vec<String>, RegistryError> {
    shape.check(id).map_err(|_| bad(id, shape))?;
    // Every shape alternates fixed and named segments after `providers/<namespace>`.
    let segments: Vec<&str> = id.trim_start_matches('/').split('/').collect();
    let mut names = vec![segments[1].to_owned(), segments[3].to_owned()];
    names.extend(
        segments[6..]
            .iter()
            .skip(1)
            .step_by(2)
            .map(|s| (*s).to_owned()),
    );
    Ok(names)
}

impl GalleryId {
    /// Parses a gallery id.
    ///
    /// # Errors
    /// [`RegistryError::BadId`] naming the expected form.
    pub fn parse(id: &str) -> Result<Self, RegistryError> {
        let mut n = names(id, ResourceIdShape::Gallery)?.into_iter();
        Ok(Self {
            subscription: n.next().unwrap_or_default(),
            resource_group: n.next().unwrap_or_default(),
            gallery: n.next().unwrap_or_default(),
        })
    }
}

impl fmt::Display for GalleryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/galleries/{}",
            self.subscription, self.resource_group, self.gallery
        )
    }
}

impl DefinitionId {
    /// Parses an image definition id (without a version).
    ///
    /// # Errors
    /// [`RegistryError::BadId`] naming the expected form.
    pub fn parse(id: &str) -> Result<Self, RegistryError> {
        match VersionTarget::parse(id)? {
            VersionTarget::Automatic(definition) => Ok(definition),
            VersionTarget::Explicit(..) => Err(RegistryError::BadId {
                id: id.to_owned(),
                expected: "an image definition id without '/versions/...'".to_owned(),
            }),
        }
    }

    /// The id of `version` of this definition.
    pub fn version_id(&self, version: &ImageVersion) -> String {
        format!("{self}/versions/{version}")
    }
}

impl fmt::Display for DefinitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/images/{}", self.gallery, self.image)
    }
}

impl VersionTarget {
    /// Parses a `galleryImageId`: a definition, or a definition with `/versions/x.y.z`.
    ///
    /// # Errors
    /// [`RegistryError::BadId`] naming the expected form.
    pub fn parse(id: &str) -> Result<Self, RegistryError> {
        let parsed =
            GalleryImageId::parse(id).ok_or_else(|| bad(id, ResourceIdShape::GalleryImage))?;
        let definition = DefinitionId {
            gallery: GalleryId {
                subscription: parsed.subscription,
                resource_group: parsed.resource_group,
                gallery: parsed.gallery,
            },
            image: parsed.image,
        };
        match parsed.version {
            None => Ok(Self::Automatic(definition)),
            Some(version) => {
                let version = version.parse().map_err(RegistryError::Version)?;
                Ok(Self::Explicit(definition, version))
            }
        }
    }

    /// The definition either form names.
    pub fn definition(&self) -> &DefinitionId {
        match self {
            Self::Automatic(d) | Self::Explicit(d, _) => d,
        }
    }
}

impl ManagedImageId {
    /// Parses a managed image id.
    ///
    /// # Errors
    /// [`RegistryError::BadId`] naming the expected form.
    pub fn parse(id: &str) -> Result<Self, RegistryError> {
        let mut n = names(id, ResourceIdShape::ManagedImage)?.into_iter();
        Ok(Self {
            subscription: n.next().unwrap_or_default(),
            resource_group: n.next().unwrap_or_default(),
            name: n.next().unwrap_or_default(),
        })
    }
}

impl fmt::Display for ManagedImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/images/{}",
            self.subscription, self.resource_group, self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GALLERY: &str =
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/galleries/g1";

    #[test]
    fn ids_parse_in_any_case_and_print_canonically() {
        let g = GalleryId::parse(&GALLERY.to_ascii_lowercase()).unwrap();
        assert_eq!(g.gallery, "g1");
        assert_eq!(g.to_string(), GALLERY);
        let explicit =
            VersionTarget::parse(&format!("{GALLERY}/images/deb/versions/1.2.3")).unwrap();
        assert_eq!(
            explicit,
            VersionTarget::Explicit(
                DefinitionId {
                    gallery: g.clone(),
                    image: "deb".into()
                },
                "1.2.3".parse().unwrap()
            )
        );
        let auto = VersionTarget::parse(&format!("{GALLERY}/images/deb")).unwrap();
        assert_eq!(
            auto.definition().to_string(),
            format!("{GALLERY}/images/deb")
        );
        let m = ManagedImageId::parse(
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/img",
        )
        .unwrap();
        assert_eq!(
            (
                m.subscription.as_str(),
                m.resource_group.as_str(),
                m.name.as_str()
            ),
            ("s", "r", "img")
        );
    }

    #[test]
    fn wrong_shapes_name_the_expected_form() {
        let err = GalleryId::parse("/subscriptions/s/resourceGroups/r")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/providers/Microsoft.Compute/galleries/{galleryName}"),
            "{err}"
        );
        assert!(DefinitionId::parse(&format!("{GALLERY}/images/deb/versions/1.0.0")).is_err());
        assert!(VersionTarget::parse(&format!("{GALLERY}/images/deb/versions/latest")).is_err());
    }
}
