//! Where everything lives inside a state directory.
//!
//! ```text
//! <state>/templates/<key>/template.json        the template (resource shape)
//! <state>/templates/<key>/secrets.json         strings holding secure values (0600; see secrets.rs)
//! <state>/templates/<key>/resource.json        provisioningState, lastRunStatus, created
//! <state>/templates/<key>/staging/artifacts/   fetched artifacts, kept across runs
//! <state>/templates/<key>/staging/runs/<id>/   run.json, customization.log, cancel-requested
//! <state>/templates/<key>/staging/outputs/     <runOutputName>.json, latest per target
//! <state>/locks/<key>.lock                     mutation lock (never removed)
//! <state>/locks/<key>.run                      run lock, held by the active run
//! <state>/tmp/                                 templates being created or deleted
//! ```
//!
//! `<key>` is the template name in ASCII lower case: ARM resource names are
//! case-insensitive, so `Jammy` and `jammy` are the same template.

use std::path::{Path, PathBuf};

use super::StoreError;
use crate::template::rules::is_run_output_name;

pub(crate) const TEMPLATE_FILE: &str = "template.json";
pub(crate) const SECRETS_FILE: &str = "secrets.json";
pub(crate) const RESOURCE_FILE: &str = "resource.json";
pub(crate) const RUN_FILE: &str = "run.json";
pub(crate) const CUSTOMIZATION_LOG: &str = "customization.log";
pub(crate) const CANCEL_MARKER: &str = "cancel-requested";

/// The top-level directories of a state directory.
#[derive(Debug, Clone)]
pub(crate) struct StateLayout {
    pub(crate) root: PathBuf,
}

impl StateLayout {
    pub(crate) fn templates(&self) -> PathBuf {
        self.root.join("templates")
    }

    pub(crate) fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Paths of one template, named by its key.
    pub(crate) fn template(&self, key: &str) -> TemplatePaths {
        TemplatePaths {
            dir: self.templates().join(key),
            mutation_lock: self.locks().join(format!("{key}.lock")),
            run_lock: self.locks().join(format!("{key}.run")),
        }
    }
}

/// The files of one template.
#[derive(Debug, Clone)]
pub(crate) struct TemplatePaths {
    pub(crate) dir: PathBuf,
    pub(crate) mutation_lock: PathBuf,
    pub(crate) run_lock: PathBuf,
}

impl TemplatePaths {
    pub(crate) fn template_file(&self) -> PathBuf {
        self.dir.join(TEMPLATE_FILE)
    }

    pub(crate) fn secrets_file(&self) -> PathBuf {
        self.dir.join(SECRETS_FILE)
    }

    pub(crate) fn resource_file(&self) -> PathBuf {
        self.dir.join(RESOURCE_FILE)
    }

    pub(crate) fn staging(&self) -> PathBuf {
        staging_of(&self.dir)
    }

    pub(crate) fn artifacts(&self) -> PathBuf {
        self.staging().join("artifacts")
    }

    pub(crate) fn runs(&self) -> PathBuf {
        self.staging().join("runs")
    }

    pub(crate) fn run(&self, run_id: &str) -> PathBuf {
        self.runs().join(run_id)
    }

    pub(crate) fn outputs(&self) -> PathBuf {
        self.staging().join("outputs")
    }

    pub(crate) fn output_file(&self, run_output_name: &str) -> PathBuf {
        self.outputs().join(format!("{run_output_name}.json"))
    }
}

/// The staging directory of a template directory (also used while it is still in `tmp/`).
pub(crate) fn staging_of(template_dir: &Path) -> PathBuf {
    template_dir.join("staging")
}

/// Checks a template name and returns its key (the directory and lock name).
pub(crate) fn key_of(name: &str) -> Result<String, StoreError> {
    // `.` and `..` match AIB's pattern but would name the templates directory or its parent.
    if is_run_output_name(name) && name != "." && name != ".." {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(StoreError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// True for a directory name `key_of` can produce.
pub(crate) fn is_key(text: &str) -> bool {
    key_of(text).is_ok_and(|key| key == text)
}

/// True for a run id this store could have made; guards paths built from hand-editable files.
pub(crate) fn is_run_id(text: &str) -> bool {
    !text.is_empty()
        && text != "."
        && text != ".."
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_lower_case_and_refuse_dot_names() {
        assert_eq!(key_of("Jammy-2204_gen2.x").unwrap(), "jammy-2204_gen2.x");
        for bad in ["", ".", "..", "a/b", "a b", &"a".repeat(65)] {
            assert!(
                matches!(key_of(bad), Err(StoreError::InvalidName { .. })),
                "{bad}"
            );
        }
        assert!(is_key("jammy"));
        assert!(!is_key("Jammy"));
        assert!(is_run_id("20260101T000000.000000000Z"));
        assert!(!is_run_id("../x"));
    }
}
