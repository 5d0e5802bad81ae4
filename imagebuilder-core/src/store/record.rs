//! What is persisted about a template resource, and the record callers get back.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::error::summary;
use super::fsio::{read_json, read_optional, write_json};
use super::layout::{is_run_id, key_of, TemplatePaths};
use super::{secrets, StoreError};
use crate::run::{LastRunStatus, ProvisioningError, ProvisioningState, RunState};
use crate::template::{parse_value, ImageTemplate, InputShape, ParseOptions};

/// A template as the store holds it: the template and the resource's read-only status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    /// The template's name, with the case it was created with.
    pub name: String,
    /// The template; its `name` is the record's name.
    pub template: ImageTemplate,
    /// `provisioningState`: `Succeeded` once created, `Updating` during a patch, `Deleting`
    /// during a delete.
    pub provisioning_state: ProvisioningState,
    /// `provisioningError`, when provisioning failed.
    pub provisioning_error: Option<ProvisioningError>,
    /// `lastRunStatus`; `None` before the first run.
    ///
    /// A run whose process ended without reporting a terminal state (killed, crashed) shows
    /// as `Failed`, with no `end_time`, as soon as its run lock is released.
    pub last_run_status: Option<LastRunStatus>,
    /// Id of the last run, naming its directory under `staging/runs/`.
    pub last_run_id: Option<String>,
    /// When the template was created.
    pub created: OffsetDateTime,
    /// The template's staging area: `artifacts/`, `runs/<id>/`, `outputs/`.
    pub staging_dir: PathBuf,
}

impl TemplateRecord {
    /// The template as AIB's GET returns it: a resource object in which the value of every
    /// secure parameter shows as `<secure value>`.
    pub fn redacted_template(&self) -> Value {
        let value = serde_json::to_value(&self.template).expect("templates serialize to JSON");
        secrets::redacted(&value, &self.template.secrets)
    }

    /// The directory of the last run (its `customization.log` and `run.json`), if any.
    pub fn last_run_dir(&self) -> Option<PathBuf> {
        self.last_run_id
            .as_ref()
            .map(|id| self.staging_dir.join("runs").join(id))
    }
}

/// `resource.json`: the resource's status, written atomically under the mutation lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ResourceState {
    pub(crate) provisioning_state: ProvisioningState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) provisioning_error: Option<ProvisioningError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_run_status: Option<LastRunStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_run_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) created: OffsetDateTime,
}

impl ResourceState {
    pub(crate) fn new(created: OffsetDateTime) -> Self {
        Self {
            provisioning_state: ProvisioningState::Succeeded,
            provisioning_error: None,
            last_run_status: None,
            last_run_id: None,
            created,
        }
    }

    pub(crate) fn load(paths: &TemplatePaths) -> Result<Self, StoreError> {
        let path = paths.resource_file();
        let state: Self = read_json(&path)?;
        if let Some(id) = &state.last_run_id {
            if !is_run_id(id) {
                return Err(StoreError::corrupt(
                    path,
                    format!("lastRunId '{id}' is not a run id"),
                ));
            }
        }
        Ok(state)
    }

    pub(crate) fn save(&self, paths: &TemplatePaths) -> Result<(), StoreError> {
        write_json(&paths.resource_file(), self)
    }
}

/// Serializes a template into the JSON the store keeps at `path`.
pub(crate) fn template_json(template: &ImageTemplate, path: &Path) -> Result<Value, StoreError> {
    serde_json::to_value(template)
        .map_err(|e| StoreError::io("serialize the template for", path, std::io::Error::other(e)))
}

/// What a template's files hold: `template.json` without secure values, and `secrets.json`
/// when there are any (see [`secrets`]).
pub(crate) fn stored_json(
    template: &ImageTemplate,
    path: &Path,
) -> Result<(Value, Option<secrets::SecretsFile>), StoreError> {
    secrets::split(&template_json(template, path)?, &template.secrets)
}

/// Reads a template document kept (or about to be kept) at `path` with the template parser,
/// the only reader of template JSON. Validation errors are the parser's diagnostics.
pub(crate) fn parse_stored(value: &Value, path: &Path) -> Result<ImageTemplate, StoreError> {
    let doc = parse_value(value, &ParseOptions::default()).map_err(StoreError::Invalid)?;
    match (doc.shape, <[ImageTemplate; 1]>::try_from(doc.templates)) {
        (InputShape::Resource, Ok([template])) => Ok(template),
        _ => Err(StoreError::corrupt(
            path,
            "expected exactly one image template resource",
        )),
    }
}

/// Loads `template.json`, checking it is a valid template named for its directory.
pub(crate) fn load_template(paths: &TemplatePaths, key: &str) -> Result<ImageTemplate, StoreError> {
    let path = paths.template_file();
    let bytes =
        read_optional(&path)?.ok_or_else(|| StoreError::corrupt(&path, "the file is missing"))?;
    let mut value: Value =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::corrupt(&path, e.to_string()))?;
    let kept = secrets::load(&paths.secrets_file())?;
    if let Some(kept) = &kept {
        secrets::join(&mut value, kept, &path)?;
    }
    let mut template = parse_stored(&value, &path).map_err(|e| match e {
        StoreError::Invalid(diags) => StoreError::corrupt(&path, summary(&diags)),
        other => other,
    })?;
    if let Some(kept) = kept {
        template.secrets = kept.values;
    }
    match template.name.as_deref().map(key_of) {
        Some(Ok(k)) if k == key => Ok(template),
        _ => Err(StoreError::corrupt(
            &path,
            format!("the template's name does not match its directory '{key}'"),
        )),
    }
}

/// Loads the whole record. `run_active` says whether the run lock is held, to tell a
/// running run from one whose process died.
pub(crate) fn load_record(
    paths: &TemplatePaths,
    key: &str,
    run_active: bool,
) -> Result<TemplateRecord, StoreError> {
    let template = load_template(paths, key)?;
    let state = ResourceState::load(paths)?;
    let last_run_status = state.last_run_status.map(|mut status| {
        if !status.run_state.is_terminal() && !run_active {
            status.message = format!(
                "the run ended without reporting a final state (its process exited); last reported: {}",
                status.message
            );
            status.run_state = RunState::Failed;
        }
        status
    });
    Ok(TemplateRecord {
        name: template.name.clone().unwrap_or_else(|| key.to_owned()),
        template,
        provisioning_state: state.provisioning_state,
        provisioning_error: state.provisioning_error,
        last_run_status,
        last_run_id: state.last_run_id,
        created: state.created,
        staging_dir: paths.staging(),
    })
}
