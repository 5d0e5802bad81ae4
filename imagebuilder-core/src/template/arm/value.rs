//! Helpers for treating JSON values as ARM template values.

use serde_json::Value;

/// The ARM type name of a value, as used in error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value as an ARM int (64-bit), if it is one.
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    v.as_i64()
}

/// Text form used by `string()`, `concat()` and `format()`.
///
/// ARM runs on .NET, so booleans print as `True`/`False`; objects and arrays
/// print as compact JSON; null prints as the empty string.
pub(crate) fn to_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => v.to_string(),
    }
}

/// Looks up an object property: exact match first, then case-insensitively,
/// because ARM property access ignores case.
pub(crate) fn get_property<'v>(
    map: &'v serde_json::Map<String, Value>,
    name: &str,
) -> Option<&'v Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Short, single-line rendering of a value for error messages.
pub(crate) fn describe(v: &Value) -> String {
    let text = match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    const LIMIT: usize = 80;
    if text.chars().count() > LIMIT {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_names() {
        assert_eq!(type_name(&json!(null)), "null");
        assert_eq!(type_name(&json!(true)), "bool");
        assert_eq!(type_name(&json!(-3)), "int");
        assert_eq!(type_name(&json!(1.5)), "number");
        assert_eq!(type_name(&json!("x")), "string");
        assert_eq!(type_name(&json!([])), "array");
        assert_eq!(type_name(&json!({})), "object");
    }

    #[test]
    fn text_conversion_follows_dotnet() {
        assert_eq!(to_text(&json!(true)), "True");
        assert_eq!(to_text(&json!(false)), "False");
        assert_eq!(to_text(&json!(null)), "");
        assert_eq!(to_text(&json!(42)), "42");
        assert_eq!(to_text(&json!({"a": [1, "b"]})), r#"{"a":[1,"b"]}"#);
    }

    #[test]
    fn property_lookup_prefers_exact_then_ignores_case() {
        let v = json!({"Name": 1, "name": 2, "Other": 3});
        let m = v.as_object().unwrap();
        assert_eq!(get_property(m, "name"), Some(&json!(2)));
        assert_eq!(get_property(m, "OTHER"), Some(&json!(3)));
        assert_eq!(get_property(m, "missing"), None);
    }

    #[test]
    fn describe_truncates_long_values() {
        assert_eq!(describe(&json!("ab")), "'ab'");
        let long = "x".repeat(100);
        let d = describe(&json!(long));
        assert!(d.ends_with("..."));
        assert_eq!(d.chars().count(), 83);
    }
}
