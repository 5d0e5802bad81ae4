//! Parameters: values supplied by the user, and resolving the template's
//! declared parameters against them (type checks, defaults, constraints).

use serde_json::{Map, Value};

use super::error::ArmError;
use super::eval::{evaluate_tree, EvalContext, Resolver};
use super::lazy::LazyTable;
use super::path;
use super::value::{describe, get_property, type_name};

/// A supplied value before it is checked against the declaration.
#[derive(Debug, Clone, PartialEq)]
enum SuppliedValue {
    /// From the command line: converted according to the declared type.
    Text(String),
    /// From a parameters file or an API caller: must already have the type.
    Json(Value),
}

/// Parameter values supplied by the user.
///
/// Names are case-insensitive; inserting a name again replaces the earlier
/// value, so loading a parameters file and then applying command-line
/// values makes the command line win.
#[derive(Debug, Clone, Default)]
pub struct SuppliedParameters {
    entries: Vec<(String, SuppliedValue)>,
}

impl SuppliedParameters {
    /// Parses an ARM parameters file
    /// (`{"$schema": ..., "contentVersion": ..., "parameters": {"name": {"value": ...}}}`).
    ///
    /// Key Vault `reference` entries cannot be resolved locally and are
    /// reported as errors naming the parameter; all problems are reported
    /// together.
    pub fn from_parameters_file(doc: &Value) -> Result<Self, Vec<ArmError>> {
        let Some(root) = doc.as_object() else {
            return Err(vec![ArmError::new(
                "(document)",
                "a parameters file must be a JSON object",
            )]);
        };
        if root.contains_key("resources") {
            return Err(vec![ArmError::new(
                "(document)",
                "this looks like a deployment template (it has 'resources'), not a parameters file",
            )]);
        }
        let mut out = SuppliedParameters::default();
        let params = match root.get("parameters") {
            None => return Ok(out),
            Some(Value::Object(p)) => p,
            Some(other) => {
                return Err(vec![ArmError::new(
                    "parameters",
                    format!("'parameters' must be an object, got {}", type_name(other)),
                )])
            }
        };
        let mut errors = Vec::new();
        for (name, entry) in params {
            let at = path::key("parameters", name);
            let entry = match entry {
                Value::Object(e) => e,
                other => {
                    errors.push(ArmError::new(
                        at,
                        format!(
                            "parameter '{name}' must be an object like {{\"value\": ...}}, got {}",
                            type_name(other)
                        ),
                    ));
                    continue;
                }
            };
            if let Some(v) = entry.get("value") {
                out.insert_json(name, v.clone());
            } else if entry.contains_key("reference") {
                errors.push(ArmError::new(
                    at,
                    format!(
                        "parameter '{name}' is a Key Vault reference, which cannot be resolved locally; supply the value with --parameter {name}=VALUE"
                    ),
                ));
            } else {
                errors.push(ArmError::new(
                    at,
                    format!("parameter '{name}' has no 'value'"),
                ));
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// Sets a parameter from command-line text (`--parameter NAME=VALUE`).
    ///
    /// The text is converted by the declared type during evaluation: int and
    /// bool are parsed, object and array are parsed as JSON, string and
    /// securestring are kept as text.
    pub fn insert_text(&mut self, name: &str, value: &str) {
        self.insert(name, SuppliedValue::Text(value.to_string()));
    }

    /// Sets a parameter to a JSON value, which must match the declared type.
    pub fn insert_json(&mut self, name: &str, value: Value) {
        self.insert(name, SuppliedValue::Json(value));
    }

    /// Copies every value of `other` into `self`, replacing same-named ones
    /// (for example command-line values over a parameters file).
    pub fn merge_from(&mut self, other: &SuppliedParameters) {
        for (name, value) in &other.entries {
            self.insert(name, value.clone());
        }
    }

    /// The supplied parameter names, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    fn insert(&mut self, name: &str, value: SuppliedValue) {
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.entries.push((name.to_string(), value));
    }

    fn get(&self, name: &str) -> Option<&SuppliedValue> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// A declared parameter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamType {
    String,
    SecureString,
    Int,
    Bool,
    Object,
    SecureObject,
    Array,
}

impl ParamType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "string" => ParamType::String,
            "securestring" => ParamType::SecureString,
            "int" => ParamType::Int,
            "bool" => ParamType::Bool,
            "object" => ParamType::Object,
            "secureobject" => ParamType::SecureObject,
            "array" => ParamType::Array,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::SecureString => "securestring",
            ParamType::Int => "int",
            ParamType::Bool => "bool",
            ParamType::Object => "object",
            ParamType::SecureObject => "secureObject",
            ParamType::Array => "array",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            ParamType::String | ParamType::SecureString => v.is_string(),
            ParamType::Int => v.is_i64(),
            ParamType::Bool => v.is_boolean(),
            ParamType::Object | ParamType::SecureObject => v.is_object(),
            ParamType::Array => v.is_array(),
        }
    }

    /// Converts command-line text to a value of this type.
    fn convert_text(self, text: &str) -> Result<Value, String> {
        match self {
            ParamType::String | ParamType::SecureString => Ok(Value::String(text.to_string())),
            ParamType::Int => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| "not a valid int".to_string()),
            ParamType::Bool => match text.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err("not a valid bool (expected true or false)".to_string()),
            },
            ParamType::Object | ParamType::SecureObject | ParamType::Array => {
                let v: Value = serde_json::from_str(text)
                    .map_err(|e| format!("not valid JSON for type {}: {e}", self.name()))?;
                if self.accepts(&v) {
                    Ok(v)
                } else {
                    Err(format!(
                        "JSON {} is not a valid {}",
                        type_name(&v),
                        self.name()
                    ))
                }
            }
        }
    }
}

/// One entry of the template's `parameters` section.
struct Declaration<'a> {
    name: &'a str,
    /// The parsed type, or the error that prevents using the parameter.
    ty: Result<ParamType, ArmError>,
    decl: &'a Map<String, Value>,
}

/// The template's declared parameters, resolved on demand.
pub(crate) struct Parameters<'a> {
    decls: Vec<Declaration<'a>>,
    supplied: &'a SuppliedParameters,
    table: LazyTable,
}

/// The shared empty declaration for parameters whose declaration is not an
/// object.
fn empty_map() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}

impl<'a> Parameters<'a> {
    /// Reads the `parameters` section; a malformed section is an error.
    pub(crate) fn new(
        section: Option<&'a Value>,
        supplied: &'a SuppliedParameters,
    ) -> (Self, Vec<ArmError>) {
        let mut errors = Vec::new();
        let mut decls = Vec::new();
        match section {
            None => {}
            Some(Value::Object(map)) => {
                for (name, decl) in map {
                    let at = path::key("parameters", name);
                    let (ty, decl) = match decl {
                        Value::Object(d) => (declared_type(name, d, &at), d),
                        other => (
                            Err(ArmError::new(
                                &at,
                                format!(
                                    "the declaration of parameter '{name}' must be an object, got {}",
                                    type_name(other)
                                ),
                            )),
                            empty_map(),
                        ),
                    };
                    decls.push(Declaration { name, ty, decl });
                }
            }
            Some(other) => errors.push(ArmError::new(
                "parameters",
                format!("'parameters' must be an object, got {}", type_name(other)),
            )),
        }
        let params = Parameters {
            decls,
            supplied,
            table: LazyTable::new("parameters"),
        };
        (params, errors)
    }

    /// Resolves every declared parameter and checks that every supplied
    /// one is declared, returning all the errors found.
    pub(crate) fn resolve_all(&self, resolver: &dyn Resolver) -> Vec<ArmError> {
        let mut errors = Vec::new();
        for d in &self.decls {
            if let Some(Err(e)) = self.get(d.name, resolver) {
                errors.extend(e);
            }
        }
        for name in self.supplied.names() {
            if !self.decls.iter().any(|d| d.name.eq_ignore_ascii_case(name)) {
                let mut declared: Vec<&str> = self.decls.iter().map(|d| d.name).collect();
                declared.sort_unstable();
                errors.push(ArmError::new(
                    path::key("parameters", name),
                    format!(
                        "parameter '{name}' was supplied but the template does not declare it (declared: {})",
                        if declared.is_empty() {
                            "none".to_string()
                        } else {
                            declared.join(", ")
                        }
                    ),
                ));
            }
        }
        errors
    }

    /// The value of a parameter; `None` when the template does not declare it.
    pub(crate) fn get(
        &self,
        name: &str,
        resolver: &dyn Resolver,
    ) -> Option<Result<Value, Vec<ArmError>>> {
        let d = self
            .decls
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))?;
        Some(self.table.get(d.name, || self.compute(d, resolver)))
    }

    fn compute(
        &self,
        d: &Declaration<'_>,
        resolver: &dyn Resolver,
    ) -> Result<Value, Vec<ArmError>> {
        let ty = d.ty.clone().map_err(|e| vec![e])?;
        let name = d.name;
        let at = path::key("parameters", name);
        let value = match self.supplied.get(name) {
            Some(SuppliedValue::Text(text)) => ty.convert_text(text).map_err(|why| {
                vec![ArmError::new(
                    &at,
                    format!(
                        "value '{text}' for parameter '{name}' is {why}; the parameter is declared as {}",
                        ty.name()
                    ),
                )]
            })?,
            Some(SuppliedValue::Json(v)) => {
                if !ty.accepts(v) {
                    return Err(vec![ArmError::new(
                        &at,
                        format!(
                            "parameter '{name}' is declared as {} but was given a {} value {}",
                            ty.name(),
                            type_name(v),
                            describe(v)
                        ),
                    )]);
                }
                v.clone()
            }
            None => match get_property(d.decl, "defaultValue") {
                Some(default) => {
                    let ctx = EvalContext {
                        in_parameter_default: true,
                        copy: None,
                    };
                    let v = evaluate_tree(default, &path::key(&at, "defaultValue"), resolver, ctx)?;
                    if !ty.accepts(&v) {
                        return Err(vec![ArmError::new(
                            path::key(&at, "defaultValue"),
                            format!(
                                "the defaultValue of parameter '{name}' is a {} but the parameter is declared as {}",
                                type_name(&v),
                                ty.name()
                            ),
                        )]);
                    }
                    v
                }
                None => {
                    return Err(vec![ArmError::new(
                        &at,
                        format!(
                            "missing value for parameter '{name}' (declared type {}, no defaultValue); supply it with --parameter {name}=VALUE or a parameters file",
                            ty.name()
                        ),
                    )])
                }
            },
        };
        let errors = check_constraints(name, d.decl, &value, &at);
        if errors.is_empty() {
            Ok(value)
        } else {
            Err(errors)
        }
    }
}

fn declared_type(name: &str, decl: &Map<String, Value>, at: &str) -> Result<ParamType, ArmError> {
    match get_property(decl, "type") {
        Some(Value::String(t)) => ParamType::parse(t).ok_or_else(|| {
            ArmError::new(
                path::key(at, "type"),
                format!(
                    "parameter '{name}' has unknown type '{t}' (expected string, securestring, int, bool, object, secureObject or array)"
                ),
            )
        }),
        Some(other) => Err(ArmError::new(
            path::key(at, "type"),
            format!("the type of parameter '{name}' must be a string, got {}", type_name(other)),
        )),
        None => Err(ArmError::new(
            at,
            format!("parameter '{name}' has no 'type'"),
        )),
    }
}

/// Checks allowedValues, minValue/maxValue and minLength/maxLength.
fn check_constraints(
    name: &str,
    decl: &Map<String, Value>,
    value: &Value,
    at: &str,
) -> Vec<ArmError> {
    let mut errors = Vec::new();
    if let Some(allowed) = get_property(decl, "allowedValues") {
        match allowed {
            Value::Array(allowed) => {
                // For array parameters every element must be allowed.
                let candidates: Vec<&Value> = match value {
                    Value::Array(items) if !allowed.iter().any(Value::is_array) => {
                        items.iter().collect()
                    }
                    other => vec![other],
                };
                for c in candidates {
                    if !allowed.contains(c) {
                        let list: Vec<String> = allowed.iter().map(describe).collect();
                        errors.push(ArmError::new(
                            at,
                            format!(
                                "value {} for parameter '{name}' is not one of the allowed values: {}",
                                describe(c),
                                list.join(", ")
                            ),
                        ));
                    }
                }
            }
            other => errors.push(ArmError::new(
                path::key(at, "allowedValues"),
                format!("allowedValues must be an array, got {}", type_name(other)),
            )),
        }
    }
    if let Some(n) = value.as_i64() {
        if let Some(min) = get_property(decl, "minValue").and_then(Value::as_i64) {
            if n < min {
                errors.push(ArmError::new(
                    at,
                    format!("value {n} for parameter '{name}' is less than minValue {min}"),
                ));
            }
        }
        if let Some(max) = get_property(decl, "maxValue").and_then(Value::as_i64) {
            if n > max {
                errors.push(ArmError::new(
                    at,
                    format!("value {n} for parameter '{name}' is greater than maxValue {max}"),
                ));
            }
        }
    }
    let len = match value {
        Value::String(s) => Some(s.chars().count() as i64),
        Value::Array(items) => Some(items.len() as i64),
        _ => None,
    };
    if let Some(len) = len {
        if let Some(min) = get_property(decl, "minLength").and_then(Value::as_i64) {
            if len < min {
                errors.push(ArmError::new(
                    at,
                    format!("parameter '{name}' has length {len}, less than minLength {min}"),
                ));
            }
        }
        if let Some(max) = get_property(decl, "maxLength").and_then(Value::as_i64) {
            if len > max {
                errors.push(ArmError::new(
                    at,
                    format!("parameter '{name}' has length {len}, more than maxLength {max}"),
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_file_values() {
        let doc = json!({
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
            "contentVersion": "1.0.0.0",
            "parameters": {
                "name": {"value": "img"},
                "count": {"value": 3},
                "tags": {"value": {"a": "b"}}
            }
        });
        let p = SuppliedParameters::from_parameters_file(&doc).unwrap();
        let mut names: Vec<&str> = p.names().collect();
        names.sort_unstable();
        assert_eq!(names, vec!["count", "name", "tags"]);
        assert_eq!(p.get("NAME"), Some(&SuppliedValue::Json(json!("img"))));
        assert_eq!(p.get("tags"), Some(&SuppliedValue::Json(json!({"a": "b"}))));
    }

    #[test]
    fn parameters_file_errors_name_each_parameter() {
        let doc = json!({"parameters": {
            "secret": {"reference": {"keyVault": {"id": "x"}, "secretName": "s"}},
            "empty": {},
            "bare": 5
        }});
        let errs = SuppliedParameters::from_parameters_file(&doc).unwrap_err();
        let mut shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        // Map iteration order depends on serde_json features; compare sorted.
        shown.sort();
        assert_eq!(
            shown,
            vec![
                "parameters.bare: parameter 'bare' must be an object like {\"value\": ...}, got int",
                "parameters.empty: parameter 'empty' has no 'value'",
                "parameters.secret: parameter 'secret' is a Key Vault reference, which cannot be resolved locally; supply the value with --parameter secret=VALUE",
            ]
        );
    }

    #[test]
    fn parameters_file_shape_errors() {
        assert_eq!(
            SuppliedParameters::from_parameters_file(&json!([1])).unwrap_err()[0].to_string(),
            "(document): a parameters file must be a JSON object"
        );
        assert_eq!(
            SuppliedParameters::from_parameters_file(&json!({"parameters": []})).unwrap_err()[0]
                .to_string(),
            "parameters: 'parameters' must be an object, got array"
        );
        assert_eq!(
            SuppliedParameters::from_parameters_file(&json!({"resources": []})).unwrap_err()[0]
                .to_string(),
            "(document): this looks like a deployment template (it has 'resources'), not a parameters file"
        );
        let empty = SuppliedParameters::from_parameters_file(&json!({})).unwrap();
        assert_eq!(empty.names().count(), 0);
    }

    #[test]
    fn later_inserts_win_case_insensitively() {
        let mut p = SuppliedParameters::default();
        p.insert_json("Name", json!("file"));
        p.insert_text("name", "cli");
        assert_eq!(p.names().collect::<Vec<_>>(), vec!["name"]);
        assert_eq!(p.get("NAME"), Some(&SuppliedValue::Text("cli".into())));

        let mut file = SuppliedParameters::default();
        file.insert_json("a", json!(1));
        file.insert_json("b", json!(2));
        let mut cli = SuppliedParameters::default();
        cli.insert_text("B", "3");
        file.merge_from(&cli);
        assert_eq!(file.get("a"), Some(&SuppliedValue::Json(json!(1))));
        assert_eq!(file.get("b"), Some(&SuppliedValue::Text("3".into())));
    }

    #[test]
    fn text_conversion_by_type() {
        assert_eq!(ParamType::Int.convert_text("42"), Ok(json!(42)));
        assert_eq!(
            ParamType::Int.convert_text("abc"),
            Err("not a valid int".into())
        );
        assert_eq!(ParamType::Bool.convert_text("True"), Ok(json!(true)));
        assert_eq!(
            ParamType::Bool.convert_text("1"),
            Err("not a valid bool (expected true or false)".into())
        );
        assert_eq!(ParamType::String.convert_text("42"), Ok(json!("42")));
        assert_eq!(
            ParamType::SecureString.convert_text(" x "),
            Ok(json!(" x "))
        );
        assert_eq!(
            ParamType::Object.convert_text(r#"{"a":1}"#),
            Ok(json!({"a": 1}))
        );
        assert_eq!(ParamType::Array.convert_text("[1,2]"), Ok(json!([1, 2])));
        assert_eq!(
            ParamType::Array.convert_text("{}"),
            Err("JSON object is not a valid array".into())
        );
        assert!(ParamType::Object
            .convert_text("{")
            .unwrap_err()
            .starts_with("not valid JSON for type object: "));
    }

    #[test]
    fn type_names_parse_case_insensitively() {
        assert_eq!(
            ParamType::parse("SecureString"),
            Some(ParamType::SecureString)
        );
        assert_eq!(
            ParamType::parse("secureObject"),
            Some(ParamType::SecureObject)
        );
        assert_eq!(ParamType::parse("INT"), Some(ParamType::Int));
        assert_eq!(ParamType::parse("float"), None);
    }

    #[test]
    fn constraints_report_every_violation() {
        let decl = json!({"minLength": 3, "maxLength": 4, "allowedValues": ["abc", "abcd"]});
        let errs = check_constraints("s", decl.as_object().unwrap(), &json!("ab"), "parameters.s");
        let shown: Vec<String> = errs.iter().map(|e| e.message.clone()).collect();
        assert_eq!(
            shown,
            vec![
                "value 'ab' for parameter 's' is not one of the allowed values: 'abc', 'abcd'",
                "parameter 's' has length 2, less than minLength 3",
            ]
        );
        let decl = json!({"minValue": 1, "maxValue": 5});
        let d = decl.as_object().unwrap();
        assert_eq!(
            check_constraints("n", d, &json!(9), "p")[0].message,
            "value 9 for parameter 'n' is greater than maxValue 5"
        );
        assert_eq!(
            check_constraints("n", d, &json!(0), "p")[0].message,
            "value 0 for parameter 'n' is less than minValue 1"
        );
        assert!(check_constraints("n", d, &json!(3), "p").is_empty());
    }

    #[test]
    fn allowed_values_for_arrays_check_each_element() {
        let decl = json!({"allowedValues": ["a", "b"], "maxLength": 1});
        let d = decl.as_object().unwrap();
        let errs = check_constraints("list", d, &json!(["a", "c"]), "p");
        let shown: Vec<String> = errs.iter().map(|e| e.message.clone()).collect();
        assert_eq!(
            shown,
            vec![
                "value 'c' for parameter 'list' is not one of the allowed values: 'a', 'b'",
                "parameter 'list' has length 2, more than maxLength 1",
            ]
        );
    }
}
