//! The one error type of the gallery and managed-image registries.

use imagebuilder_core::store::StoreError;

/// Why a registry operation failed; each variant names the resource involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// An ARM id does not have the expected shape.
    #[error("'{id}' is not {expected}")]
    BadId {
        /// The id given.
        id: String,
        /// What was expected, e.g. the form of a gallery id.
        expected: String,
    },
    /// A gallery, image definition, version or managed image does not exist.
    #[error("{what} does not exist{hint}")]
    NotFound {
        /// The resource, e.g. `gallery /subscriptions/.../galleries/g`.
        what: String,
        /// How to make it, when that is the usual fix.
        hint: String,
    },
    /// The resource exists already and is never replaced.
    #[error("{what} already exists")]
    AlreadyExists {
        /// The resource.
        what: String,
    },
    /// The image does not fit the gallery image definition.
    #[error(
        "the image's {field} is {image} but image definition {definition_id} requires {definition}"
    )]
    Mismatch {
        /// `osType`, `hyperVGeneration` or `securityType`.
        field: &'static str,
        /// The image's value.
        image: String,
        /// The definition's value.
        definition: String,
        /// The definition.
        definition_id: String,
    },
    /// No version number could be chosen, or the one given is not valid.
    #[error("{0}")]
    Version(String),
    /// The files of the registry could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}
