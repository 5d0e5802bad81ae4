//! Parameters: values supplied by the user, and resolving the template's
//! declared parameters against them (type checks, defaults, constraints).

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::ArmError;
use super::eval::{evaluate_tree, EvalContext, Resolver};
use super::lazy::LazyTable;
use super::path;
use super::value::{a_type_name, describe, get_property, list_names, type_name, ValueSet};

/// Shown in error messages instead of the value of a `securestring` or
/// `secureObject` parameter.
pub(crate) const REDACTED: &str = "<secure value>";

/// A supplied value before it is checked against the declaration.
#[derive(Debug, Clone, PartialEq)]
enum SuppliedValue {
    /// From the command line: converted according to the declared type.
    Text(String),
    /// From a parameters file or an API caller: must already have the type.
    Json(Value),
    /// A parameters file entry that names a Key Vault secret: it cannot be
    /// resolved locally, so it is an error unless a value replaces it.
    KeyVaultReference,
}

/// Parameter values supplied by the user.
///
/// Names are case-insensitive; inserting a name again replaces the earlier
/// value, so loading a parameters file and then applying command-line
/// values makes the command line win.
#[derive(Debug, Clone, Default)]
pub struct SuppliedParameters {
    /// Values in insertion order; a replaced value leaves `None` behind so
    /// replacing does not shift the others.
    entries: Vec<Option<(String, SuppliedValue)>>,
    /// Lower-cased name to index in `entries`.
    index: HashMap<String, usize>,
}

impl SuppliedParameters {
    /// Parses an ARM parameters file
    /// (`{"$schema": ..., "contentVersion": ..., "parameters": {"name": {"value": ...}}}`).
    ///
    /// A Key Vault `reference` entry cannot be resolved locally: it is
    /// recorded as needing a value, which a later [`insert_text`] or
    /// [`insert_json`] for the same name supplies (for example from
    /// `--parameter`). If none does, evaluating the deployment reports it
    /// at `parameters.NAME`. Every other problem is reported here, all
    /// together.
    ///
    /// [`insert_text`]: SuppliedParameters::insert_text
    /// [`insert_json`]: SuppliedParameters::insert_json
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
                out.insert(name, SuppliedValue::KeyVaultReference);
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
        for (name, value) in other.entries.iter().flatten() {
            self.insert(name, value.clone());
        }
    }

    /// The supplied parameter names, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().flatten().map(|(n, _)| n.as_str())
    }

    fn insert(&mut self, name: &str, value: SuppliedValue) {
        let at = self.entries.len();
        if let Some(old) = self.index.insert(name.to_ascii_lowercase(), at) {
            self.entries[old] = None;
        }
        self.entries.push(Some((name.to_string(), value)));
    }

    fn get(&self, name: &str) -> Option<&SuppliedValue> {
        let i = *self.index.get(&name.to_ascii_lowercase())?;
        self.entries[i].as_ref().map(|(_, v)| v)
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

    /// Whether values of this type are secrets, never shown in messages.
    fn is_secure(self) -> bool {
        matches!(self, ParamType::SecureString | ParamType::SecureObject)
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
    /// Lower-cased name to index in `decls` (the first of duplicates).
    index: HashMap<String, usize>,
    supplied: &'a SuppliedParameters,
    table: LazyTable,
    /// The text of every secure parameter value resolved so far, for
    /// [`Parameters::secrets`].
    secrets: RefCell<Vec<String>>,
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
        let mut index = HashMap::with_capacity(decls.len());
        for (i, d) in decls.iter().enumerate() {
            if let Entry::Vacant(slot) = index.entry(d.name.to_ascii_lowercase()) {
                slot.insert(i);
            }
        }
        let params = Parameters {
            decls,
            index,
            supplied,
            table: LazyTable::new("parameters"),
            secrets: RefCell::new(Vec::new()),
        };
        (params, errors)
    }

    /// The strings inside the values of `securestring` and `secureObject`
    /// parameters resolved so far, so that messages can be scrubbed of them.
    pub(crate) fn secrets(&self) -> Vec<String> {
        self.secrets.borrow().clone()
    }

    fn declaration(&self, name: &str) -> Option<&Declaration<'a>> {
        self.index
            .get(&name.to_ascii_lowercase())
            .map(|&i| &self.decls[i])
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
        let mut declared: Option<String> = None;
        for name in self.supplied.names() {
            if self.declaration(name).is_none() {
                let declared = declared.get_or_insert_with(|| {
                    let mut names: Vec<&str> = self.decls.iter().map(|d| d.name).collect();
                    names.sort_unstable();
                    list_names(names.into_iter(), "none")
                });
                errors.push(ArmError::new(
                    path::key("parameters", name),
                    format!(
                        "parameter '{name}' was supplied but the template does not declare it (declared: {declared})"
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
        let d = self.declaration(name)?;
        Some(
            self.table
                .get(d.name, resolver.budget(), || self.compute(d, resolver)),
        )
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
                let shown = if ty.is_secure() {
                    REDACTED.to_string()
                } else {
                    format!("'{text}'")
                };
                vec![ArmError::new(
                    &at,
                    format!(
                        "value {shown} for parameter '{name}' is {why}; the parameter is declared as {}",
                        ty.name()
                    ),
                )]
            })?,
            Some(SuppliedValue::Json(v)) => {
                if !ty.accepts(v) {
                    let shown = if ty.is_secure() {
                        REDACTED.to_string()
                    } else {
                        describe(v)
                    };
                    return Err(vec![ArmError::new(
                        &at,
                        format!(
                            "parameter '{name}' is declared as {} but was given {} value {shown}",
                            ty.name(),
                            a_type_name(v),
                        ),
                    )]);
                }
                v.clone()
            }
            Some(SuppliedValue::KeyVaultReference) => {
                return Err(vec![ArmError::new(
                    &at,
                    format!(
                        "parameter '{name}' is a Key Vault reference in the parameters file; Key Vault references cannot be resolved locally, so pass the value with --parameter {name}=VALUE"
                    ),
                )])
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
        if ty.is_secure() {
            collect_strings(&value, &mut self.secrets.borrow_mut());
        }
        let errors = check_constraints(name, d.decl, &value, &at, ty.is_secure());
        if errors.is_empty() {
            Ok(value)
        } else {
            Err(errors)
        }
    }
}

/// Appends every string inside `v` (without recursion, since a supplied
/// value has not been checked for depth).
fn collect_strings(v: &Value, out: &mut Vec<String>) {
    let mut pending = vec![v];
    while let Some(v) = pending.pop() {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.values()),
            _ => {}
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
///
/// With `secure`, the value is shown as [`REDACTED`].
fn check_constraints(
    name: &str,
    decl: &Map<String, Value>,
    value: &Value,
    at: &str,
    secure: bool,
) -> Vec<ArmError> {
    let mut errors = Vec::new();
    let show = |v: &Value| {
        if secure {
            REDACTED.to_string()
        } else {
            describe(v)
        }
    };
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
                let mut set = ValueSet::new();
                for a in allowed {
                    set.insert(a);
                }
                let mut list: Option<String> = None;
                for c in candidates {
                    if !set.contains(c) {
                        let list = list.get_or_insert_with(|| {
                            let shown: Vec<String> = allowed.iter().map(describe).collect();
                            list_names(shown.iter().map(String::as_str), "(none)")
                        });
                        errors.push(ArmError::new(
                            at,
                            format!(
                                "value {} for parameter '{name}' is not one of the allowed values: {list}",
                                show(c),
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
                    format!(
                        "value {} for parameter '{name}' is less than minValue {min}",
                        show(value)
                    ),
                ));
            }
        }
        if let Some(max) = get_property(decl, "maxValue").and_then(Value::as_i64) {
            if n > max {
                errors.push(ArmError::new(
                    at,
                    format!(
                        "value {} for parameter '{name}' is greater than maxValue {max}",
                        show(value)
                    ),
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
        // The Key Vault reference is not an error here: a later value may
        // replace it.
        assert_eq!(
            shown,
            vec![
                "parameters.bare: parameter 'bare' must be an object like {\"value\": ...}, got int",
                "parameters.empty: parameter 'empty' has no 'value'",
            ]
        );
    }

    #[test]
    fn key_vault_references_wait_for_a_value() {
        let doc = json!({"parameters": {
            "secret": {"reference": {"keyVault": {"id": "x"}, "secretName": "s"}},
            "name": {"value": "img"}
        }});
        let mut p = SuppliedParameters::from_parameters_file(&doc).unwrap();
        assert_eq!(p.get("secret"), Some(&SuppliedValue::KeyVaultReference));
        p.insert_text("SECRET", "hunter2");
        assert_eq!(
            p.get("secret"),
            Some(&SuppliedValue::Text("hunter2".into()))
        );
        let mut names: Vec<&str> = p.names().collect();
        names.sort_unstable();
        assert_eq!(names, vec!["SECRET", "name"]);
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
        let errs = check_constraints(
            "s",
            decl.as_object().unwrap(),
            &json!("ab"),
            "parameters.s",
            false,
        );
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
            check_constraints("n", d, &json!(9), "p", false)[0].message,
            "value 9 for parameter 'n' is greater than maxValue 5"
        );
        assert_eq!(
            check_constraints("n", d, &json!(0), "p", false)[0].message,
            "value 0 for parameter 'n' is less than minValue 1"
        );
        assert!(check_constraints("n", d, &json!(3), "p", false).is_empty());
    }

    #[test]
    fn secure_values_are_never_shown() {
        let decl = json!({"allowedValues": ["a", "b"], "minValue": 5});
        let d = decl.as_object().unwrap();
        let errs = check_constraints("pw", d, &json!("hunter2"), "p", true);
        assert_eq!(
            errs[0].message,
            "value <secure value> for parameter 'pw' is not one of the allowed values: 'a', 'b'"
        );
        let errs = check_constraints("pw", d, &json!(3), "p", true);
        assert!(errs.iter().all(|e| !e.message.contains('3')), "{errs:?}");
    }

    #[test]
    fn long_lists_of_allowed_values_are_fast_and_short() {
        let allowed: Vec<String> = (0..50_000).map(|i| format!("v{i}")).collect();
        let decl = json!({"allowedValues": allowed});
        let d = decl.as_object().unwrap();
        let mut given: Vec<String> = (0..50_000).map(|i| format!("v{i}")).collect();
        given.push("nope".into());
        let start = std::time::Instant::now();
        let errs = check_constraints("list", d, &json!(given), "p", false);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].message.ends_with("and 49980 more"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn allowed_values_for_arrays_check_each_element() {
        let decl = json!({"allowedValues": ["a", "b"], "maxLength": 1});
        let d = decl.as_object().unwrap();
        let errs = check_constraints("list", d, &json!(["a", "c"]), "p", false);
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
