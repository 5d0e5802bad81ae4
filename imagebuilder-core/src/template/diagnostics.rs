//! Errors and warnings found while reading a template, each tied to a JSON path and to the
//! provisioningErrorCode AIB would report for it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// AIB's `provisioningErrorCode` values that template validation can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)] // The names are AIB's; each is documented by where it is used.
pub enum ErrorCode {
    BadSourceType,
    BadPIRSource,
    BadManagedImageSource,
    BadSharedImageVersionSource,
    BadCustomizerType,
    UnsupportedCustomizerType,
    NoCustomizerScript,
    BadValidatorType,
    UnsupportedValidatorType,
    NoValidatorScript,
    BadDistributeType,
    BadSharedImageDistribute,
    BadStagingResourceGroup,
    Other,
}

impl ErrorCode {
    /// The code as AIB spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadSourceType => "BadSourceType",
            Self::BadPIRSource => "BadPIRSource",
            Self::BadManagedImageSource => "BadManagedImageSource",
            Self::BadSharedImageVersionSource => "BadSharedImageVersionSource",
            Self::BadCustomizerType => "BadCustomizerType",
            Self::UnsupportedCustomizerType => "UnsupportedCustomizerType",
            Self::NoCustomizerScript => "NoCustomizerScript",
            Self::BadValidatorType => "BadValidatorType",
            Self::UnsupportedValidatorType => "UnsupportedValidatorType",
            Self::NoValidatorScript => "NoValidatorScript",
            Self::BadDistributeType => "BadDistributeType",
            Self::BadSharedImageDistribute => "BadSharedImageDistribute",
            Self::BadStagingResourceGroup => "BadStagingResourceGroup",
            Self::Other => "Other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a diagnostic makes the template invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The template is rejected.
    Error,
    /// The template is accepted; the user should still look.
    Warning,
}

/// One finding about a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// JSON path of the offending value in the document, e.g.
    /// `properties.customize[2].sha256Checksum`; `$` is the whole document.
    pub path: String,
    /// AIB's provisioningErrorCode for this kind of problem.
    pub code: ErrorCode,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `PATH: CODE: message` for errors, `PATH: warning: message` for warnings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}: {}: {}", self.path, self.code, self.message),
            Severity::Warning => write!(f, "{}: warning: {}", self.path, self.message),
        }
    }
}

/// Every error and warning found in one document, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records an error.
    pub fn error(&mut self, path: &Path, code: ErrorCode, message: impl Into<String>) {
        self.push(Severity::Error, path, code, message.into());
    }

    /// Records a warning.
    pub fn warning(&mut self, path: &Path, code: ErrorCode, message: impl Into<String>) {
        self.push(Severity::Warning, path, code, message.into());
    }

    fn push(&mut self, severity: Severity, path: &Path, code: ErrorCode, message: String) {
        self.items.push(Diagnostic {
            severity,
            path: path.to_string(),
            code,
            message,
        });
    }

    /// Appends another set of diagnostics.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// All diagnostics, errors and warnings interleaved in the order found.
    pub fn all(&self) -> &[Diagnostic] {
        &self.items
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// True when at least one error was recorded.
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

/// A JSON path being built while walking a document: `properties.customize[2].inline`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path(String);

impl Path {
    /// The document root, shown as `$`.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// A path starting with the given text, e.g. `resources[0]`.
    pub fn new(start: impl Into<String>) -> Self {
        Self(start.into())
    }

    /// The path of a field of this object. Names that are not plain words (identity ARM ids,
    /// names with dots or spaces) are quoted, `identity.userAssignedIdentities['/subscriptions/...']`,
    /// so the path stays unambiguous.
    pub fn field(&self, name: &str) -> Self {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'));
        match (plain, self.0.is_empty()) {
            (true, true) => Self(name.to_owned()),
            (true, false) => Self(format!("{}.{name}", self.0)),
            (false, _) => Self(format!("{}['{}']", self.0, name.replace('\'', "\\'"))),
        }
    }

    /// The path of an element of this array.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("$")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_aib_messages() {
        let p = Path::new("properties")
            .field("customize")
            .index(2)
            .field("sha256Checksum");
        assert_eq!(p.to_string(), "properties.customize[2].sha256Checksum");
        assert_eq!(Path::root().to_string(), "$");
        assert_eq!(Path::root().field("location").to_string(), "location");
        assert_eq!(
            Path::new("identity").field("/subscriptions/s").to_string(),
            "identity['/subscriptions/s']"
        );
        assert_eq!(Path::root().field("a.b").to_string(), "['a.b']");
    }

    #[test]
    fn display_distinguishes_errors_and_warnings() {
        let mut d = Diagnostics::default();
        let path = Path::new("properties").field("buildTimeoutInMinutes");
        d.error(&path, ErrorCode::Other, "must be 0..960");
        d.warning(&path, ErrorCode::Other, "short");
        let lines: Vec<String> = d.all().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "properties.buildTimeoutInMinutes: Other: must be 0..960",
                "properties.buildTimeoutInMinutes: warning: short"
            ]
        );
        assert!(d.has_errors());
        assert_eq!(d.errors().count(), 1);
        assert_eq!(d.warnings().count(), 1);
    }
}
