//! The three shapes a template document comes in, and reading any of them.
//!
//! - bare `properties` (`{"source": ..., "distribute": [...]}`),
//! - a resource object (`{"type", "apiVersion", "location", "identity", "properties"}`),
//! - an ARM deployment template holding one or more imageTemplates resources, evaluated
//!   with the parameters the user supplies.

use serde::Serialize;
use serde_json::{Map, Value};

use super::arm::{self, ArmEnvironment, SuppliedParameters};
use super::diagnostics::{Diagnostics, ErrorCode, Path};
use super::local_effect::warn_without_effect;
use super::model::ImageTemplate;
use super::parse::{self, reader::Cx};
use super::ApiVersion;

/// The shape a template document was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum InputShape {
    /// Only the `properties` of a template.
    Properties,
    /// A resource object with `type`, `apiVersion`, `location`, `identity` and `properties`.
    Resource,
    /// An ARM deployment template with `parameters`, `variables` and `resources`.
    Deployment,
}

/// How to read a document.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Values of an ARM deployment's parameters.
    pub parameters: SuppliedParameters,
    /// What `resourceGroup()` and `subscription()` return in ARM expressions.
    pub environment: ArmEnvironment,
    /// The api-version of a document that names none (bare properties, or a resource object
    /// without `apiVersion`). When unset such a document is read with the newest schema and
    /// AIB's older, lenient rules, as AIB's samples that omit it expect.
    pub default_api_version: Option<ApiVersion>,
}

/// A document that was read without errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDocument {
    /// The shape it was written in.
    pub shape: InputShape,
    /// The templates it holds: one, or several for a deployment.
    pub templates: Vec<ImageTemplate>,
    /// Warnings found while reading it.
    pub warnings: Diagnostics,
}

/// Reads a template document from JSON text. On failure, every error (and warning) found.
pub fn parse_document(text: &str, options: &ParseOptions) -> Result<TemplateDocument, Diagnostics> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => parse_value(&value, options),
        Err(e) => {
            let mut diags = Diagnostics::default();
            diags.error(
                &Path::root(),
                ErrorCode::Other,
                format!(
                    "invalid JSON at line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    syntax_message(&e)
                ),
            );
            Err(diags)
        }
    }
}

/// serde_json appends " at line L column C" to its messages; the position is reported once.
fn syntax_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Reads a template document already parsed as JSON.
pub fn parse_value(value: &Value, options: &ParseOptions) -> Result<TemplateDocument, Diagnostics> {
    let mut diags = Diagnostics::default();
    let Value::Object(map) = value else {
        diags.error(
            &Path::root(),
            ErrorCode::Other,
            "expected a JSON object holding an image template",
        );
        return Err(diags);
    };
    let (shape, templates) = if arm::is_deployment(value) {
        (
            InputShape::Deployment,
            deployment(value, options, &mut diags),
        )
    } else if has_key(map, "properties") {
        let t = resource(value, Path::root(), options, &mut diags);
        (InputShape::Resource, t.into_iter().collect())
    } else if ["source", "distribute", "customize"]
        .iter()
        .any(|k| has_key(map, k))
    {
        let t = bare_properties(value, options, &mut diags);
        (InputShape::Properties, t.into_iter().collect())
    } else {
        diags.error(
            &Path::root(),
            ErrorCode::Other,
            "not an image template: expected an ARM deployment template (with 'resources'), a resource object (with 'properties') or template properties (with 'source' and 'distribute')",
        );
        return Err(diags);
    };
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(TemplateDocument {
        shape,
        templates,
        warnings: diags,
    })
}

fn has_key(map: &Map<String, Value>, name: &str) -> bool {
    map.keys().any(|k| k.eq_ignore_ascii_case(name))
}

/// The api-version a document asks for and whether AIB's strict rules apply to it.
fn document_version(
    map: &Map<String, Value>,
    path: &Path,
    options: &ParseOptions,
    diags: &mut Diagnostics,
) -> (ApiVersion, bool) {
    let given = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("apiVersion"))
        .map(|(_, v)| v);
    let path = path.field("apiVersion");
    match given {
        None => match options.default_api_version {
            Some(version) => (version, version.is_strict()),
            None => {
                diags.warning(
                    &path,
                    ErrorCode::Other,
                    format!(
                        "no apiVersion given; read with the {} schema and field names matched case-insensitively",
                        ApiVersion::LATEST
                    ),
                );
                (ApiVersion::LATEST, false)
            }
        },
        Some(Value::String(text)) => match text.parse::<ApiVersion>() {
            Ok(version) => {
                if version == ApiVersion::V2019_05_01Preview {
                    diags.warning(
                        &path,
                        ErrorCode::Other,
                        "api-version 2019-05-01-preview is deprecated; use 2022-07-01 or later",
                    );
                }
                (version, version.is_strict())
            }
            Err(e) => {
                diags.error(&path, ErrorCode::Other, e.to_string());
                (ApiVersion::LATEST, false)
            }
        },
        Some(_) => {
            diags.error(
                &path,
                ErrorCode::Other,
                "expected the api-version as a string",
            );
            (ApiVersion::LATEST, false)
        }
    }
}

fn resource(
    value: &Value,
    path: Path,
    options: &ParseOptions,
    diags: &mut Diagnostics,
) -> Option<ImageTemplate> {
    let map = value.as_object()?;
    let (version, strict) = document_version(map, &path, options, diags);
    let mut cx = Cx {
        diags,
        version,
        strict,
    };
    parse::resource(&mut cx, value, path)
}

fn bare_properties(
    value: &Value,
    options: &ParseOptions,
    diags: &mut Diagnostics,
) -> Option<ImageTemplate> {
    let map = value.as_object()?;
    let (version, strict) = document_version(map, &Path::root(), options, diags);
    let mut cx = Cx {
        diags,
        version,
        strict,
    };
    // `apiVersion` beside bare properties chose the version above; it is not a property.
    let properties = parse::properties(&mut cx, value, Path::root(), &["apiVersion"])?;
    let template = ImageTemplate {
        api_version: version,
        name: None,
        location: None,
        tags: Default::default(),
        identity: None,
        properties,
        secrets: Vec::new(),
    };
    warn_without_effect(&template, &Path::root(), &Path::root(), cx.diags);
    Some(template)
}

fn deployment(
    value: &Value,
    options: &ParseOptions,
    diags: &mut Diagnostics,
) -> Vec<ImageTemplate> {
    let resources = match arm::evaluate_deployment(value, &options.parameters, &options.environment)
    {
        Ok(resources) => resources,
        Err(errors) => {
            for e in errors {
                diags.error(&Path::new(e.path), ErrorCode::Other, e.message);
            }
            return Vec::new();
        }
    };
    resources
        .iter()
        .filter_map(|r| {
            let path = Path::new("resources").index(r.index);
            let mut template = resource(&r.resource, path, options, diags)?;
            template.secrets = r.secrets.clone();
            Some(template)
        })
        .collect()
}
