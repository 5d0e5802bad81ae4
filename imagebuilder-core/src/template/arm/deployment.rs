//! Evaluating a whole deployment template: the entry points of the module.

use serde_json::Value;

use super::environment::ArmEnvironment;
use super::error::{dedup, ArmError};
use super::eval::{evaluate_string, evaluate_tree, EvalContext, Resolver};
use super::limits::{Budget, Limits};
use super::parameters::{Parameters, SuppliedParameters, REDACTED};
use super::path;
use super::value::{describe, get_property};
use super::variables::Variables;

/// The resource type this module evaluates.
const IMAGE_TEMPLATES: &str = "Microsoft.VirtualMachineImages/imageTemplates";

/// One evaluated `Microsoft.VirtualMachineImages/imageTemplates` resource.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatedResource {
    /// Position of the resource in the template's `resources` array.
    pub index: usize,
    /// The resource object with every expression evaluated.
    pub resource: Value,
    /// The secure parameter values the evaluation used, longest first (values shorter than
    /// four characters are left out: scrubbing them would garble text and hide nothing).
    pub secrets: Vec<String>,
}

/// True when the document looks like an ARM deployment template: it has a
/// `$schema` naming `deploymentTemplate`, or a `resources` array.
pub fn is_deployment(doc: &Value) -> bool {
    let schema = doc
        .get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|s| s.to_ascii_lowercase().contains("deploymenttemplate"));
    schema || doc.get("resources").is_some_and(Value::is_array)
}

/// Everything expressions can refer to during one evaluation.
struct Scope<'a> {
    env: &'a ArmEnvironment,
    content_version: &'a str,
    parameters: Parameters<'a>,
    variables: Variables<'a>,
    budget: Budget,
}

impl Resolver for Scope<'_> {
    fn parameter(&self, name: &str) -> Option<Result<Value, Vec<ArmError>>> {
        self.parameters.get(name, self)
    }

    fn variable(&self, name: &str) -> Option<Result<Value, Vec<ArmError>>> {
        self.variables.get(name, self)
    }

    fn environment(&self) -> &ArmEnvironment {
        self.env
    }

    fn content_version(&self) -> &str {
        self.content_version
    }

    fn budget(&self) -> &Budget {
        &self.budget
    }
}

/// Evaluates every `Microsoft.VirtualMachineImages/imageTemplates` resource
/// of a deployment template.
///
/// Parameters are resolved from `supplied` (else their `defaultValue`),
/// variables are evaluated when first used, and other resources (role
/// assignments, identities, ...) are skipped without being evaluated. All
/// problems found are returned together, each with a path into `doc`.
///
/// Hostile input cannot crash or exhaust the process: nesting, the size of
/// every value an expression produces and the total work are bounded (see
/// `limits.rs`), and going past a bound is an error like any other. Values
/// of `securestring` and `secureObject` parameters never appear in the
/// errors.
pub fn evaluate_deployment(
    doc: &Value,
    supplied: &SuppliedParameters,
    env: &ArmEnvironment,
) -> Result<Vec<EvaluatedResource>, Vec<ArmError>> {
    evaluate_deployment_within(doc, supplied, env, Limits::default())
}

/// [`evaluate_deployment`] with the given limits.
pub(crate) fn evaluate_deployment_within(
    doc: &Value,
    supplied: &SuppliedParameters,
    env: &ArmEnvironment,
    limits: Limits,
) -> Result<Vec<EvaluatedResource>, Vec<ArmError>> {
    let Some(root) = doc.as_object() else {
        return Err(vec![ArmError::new(
            "(document)",
            "a deployment template must be a JSON object",
        )]);
    };
    let mut errors = Vec::new();
    let (parameters, e) = Parameters::new(root.get("parameters"), supplied);
    errors.extend(e);
    let (variables, e) = Variables::new(root.get("variables"));
    errors.extend(e);
    let scope = Scope {
        env,
        content_version: root
            .get("contentVersion")
            .and_then(Value::as_str)
            .unwrap_or("1.0.0.0"),
        parameters,
        variables,
        budget: Budget::new(limits),
    };
    // Every parameter is checked, used or not, so a bad value is reported
    // even when no expression happens to read it.
    errors.extend(scope.parameters.resolve_all(&scope));

    let resources = match root.get("resources") {
        Some(Value::Array(items)) => items.as_slice(),
        Some(Value::Object(_)) => {
            errors.push(ArmError::new(
                "resources",
                "symbolic-name resources (languageVersion 2.0) are not supported; 'resources' must be an array",
            ));
            return Err(report(errors, &scope));
        }
        _ => {
            errors.push(ArmError::new(
                "resources",
                "the template has no 'resources' array",
            ));
            return Err(report(errors, &scope));
        }
    };

    let mut found = 0;
    let mut out = Vec::new();
    for (index, resource) in resources.iter().enumerate() {
        let Some(obj) = resource.as_object() else {
            continue;
        };
        let is_image_template = get_property(obj, "type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case(IMAGE_TEMPLATES));
        if !is_image_template {
            continue;
        }
        found += 1;
        let at = path::index("resources", index);
        if get_property(obj, "copy").is_some() {
            errors.push(ArmError::new(
                path::key(&at, "copy"),
                "copy loops on an imageTemplates resource are not supported",
            ));
            continue;
        }
        match deployed(obj.get("condition"), &at, &scope) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                errors.extend(e);
                continue;
            }
        }
        match evaluate_tree(resource, &at, &scope, EvalContext::default()) {
            Ok(resource) => out.push(EvaluatedResource {
                index,
                resource,
                secrets: scrubbable(scope.parameters.secrets()),
            }),
            Err(e) => errors.extend(e),
        }
    }
    if found == 0 {
        errors.push(ArmError::new(
            "resources",
            format!("no {IMAGE_TEMPLATES} resource was found in the template"),
        ));
    } else if out.is_empty() && errors.is_empty() {
        errors.push(ArmError::new(
            "resources",
            format!("every {IMAGE_TEMPLATES} resource has a condition that is false"),
        ));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(report(errors, &scope))
    }
}

/// The errors as reported: each once, and with the text of secure
/// parameter values replaced by [`REDACTED`] wherever an expression
/// carried it into a message (`int(parameters('password'))` echoes its
/// argument, for example).
fn report(errors: Vec<ArmError>, scope: &Scope<'_>) -> Vec<ArmError> {
    let mut errors = dedup(errors);
    let secrets = scrubbable(scope.parameters.secrets());
    if !secrets.is_empty() {
        for e in &mut errors {
            for s in &secrets {
                if e.message.contains(s.as_str()) {
                    e.message = e.message.replace(s.as_str(), REDACTED);
                }
            }
        }
    }
    dedup(errors)
}

/// Shortest secure value scrubbed from messages.
const MIN_SCRUBBED_CHARS: usize = 4;

/// The secure values worth scrubbing, longest first so that a secret containing another is
/// replaced whole. Very short values are left alone: replacing every "a" or "on" would make
/// messages unreadable, and such a value protects nothing anyway.
fn scrubbable(mut secrets: Vec<String>) -> Vec<String> {
    secrets.retain(|s| s.chars().count() >= MIN_SCRUBBED_CHARS);
    secrets.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secrets.dedup();
    secrets
}

/// Evaluates a resource's optional `condition`.
fn deployed(condition: Option<&Value>, at: &str, scope: &Scope<'_>) -> Result<bool, Vec<ArmError>> {
    let at = path::key(at, "condition");
    let value = match condition {
        None => return Ok(true),
        Some(Value::String(s)) => evaluate_string(s, &at, scope, EvalContext::default())?,
        Some(other) => other.clone(),
    };
    value.as_bool().ok_or_else(|| {
        vec![ArmError::new(
            at,
            format!("condition must be a bool, got {}", describe(&value)),
        )]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recognises_deployment_templates() {
        assert!(is_deployment(&json!({
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
        })));
        assert!(is_deployment(&json!({"resources": []})));
        assert!(!is_deployment(&json!({"resources": {}})));
        assert!(!is_deployment(&json!({
            "type": "Microsoft.VirtualMachineImages/imageTemplates",
            "properties": {}
        })));
        assert!(!is_deployment(&json!({
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"
        })));
        assert!(!is_deployment(&json!("text")));
    }
}
