//! Folder names for ARM names: lower case (ARM names compare case-insensitively), and only
//! characters that cannot climb out of the registry.

use super::RegistryError;

/// The folder name for an ARM resource name, or an error naming the id it came from.
pub(super) fn folder(name: &str, id: &str) -> Result<String, RegistryError> {
    let safe = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'));
    if !safe {
        return Err(RegistryError::BadId {
            id: id.to_owned(),
            expected: format!(
                "an id whose names use only letters, digits, '-', '_', '.', '(' and ')' ('{name}' does not)"
            ),
        });
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_case_and_never_climb() {
        assert_eq!(folder("MyGallery", "id").unwrap(), "mygallery");
        for bad in ["", ".", "..", "a/b", "a b", "<rg>"] {
            assert!(folder(bad, "id").is_err(), "{bad}");
        }
    }
}
