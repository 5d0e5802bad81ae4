//! The error type reported by template evaluation.

use std::collections::HashSet;
use std::fmt;

/// A problem found while evaluating a deployment template or parameters file.
///
/// `path` points into the JSON document (for example
/// `resources[0].properties.customize[1].inline[0]` or `parameters.name`),
/// so the user can find the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmError {
    /// Location of the problem inside the document.
    pub path: String,
    /// Human-readable description of the problem.
    pub message: String,
}

impl ArmError {
    /// Builds an error at `path`.
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ArmError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ArmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ArmError {}

/// Removes repeated errors while keeping the first occurrence's position.
///
/// A failing parameter or variable is reported by every expression that uses
/// it; the user needs to see it once.
pub(crate) fn dedup(errors: Vec<ArmError>) -> Vec<ArmError> {
    let keep: Vec<bool> = {
        let mut seen = HashSet::with_capacity(errors.len());
        errors
            .iter()
            .map(|e| seen.insert((e.path.as_str(), e.message.as_str())))
            .collect()
    };
    errors
        .into_iter()
        .zip(keep)
        .filter_map(|(e, keep)| keep.then_some(e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_path_colon_message() {
        let e = ArmError::new("parameters.x", "bad value");
        assert_eq!(e.to_string(), "parameters.x: bad value");
    }

    #[test]
    fn dedup_keeps_first_occurrence_order() {
        let a = ArmError::new("a", "1");
        let b = ArmError::new("b", "2");
        let out = dedup(vec![a.clone(), b.clone(), a.clone()]);
        assert_eq!(out, vec![a, b]);
    }

    #[test]
    fn dedup_is_not_quadratic() {
        let errors: Vec<ArmError> = (0..200_000)
            .map(|i| ArmError::new(format!("inline[{}]", i % 100_000), "unsupported"))
            .collect();
        let start = std::time::Instant::now();
        assert_eq!(dedup(errors).len(), 100_000);
        // The linear search took minutes; hashing takes well under a second.
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
