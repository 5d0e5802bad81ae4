//! Conversion functions: string, int, bool, json.

use serde_json::Value;

use super::{Args, CallContext};
use crate::template::arm::value::{describe, to_text};

/// `string(valueToConvert)`: .NET-style text (`True`, compact JSON, ...).
pub(crate) fn string(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    Ok(Value::String(to_text(a.get(0))))
}

/// `int(valueToConvert)`: from an int or a string of digits.
pub(crate) fn int(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    match a.get(0) {
        Value::Number(n) if n.is_i64() => Ok(Value::Number(n.clone())),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| a.error(format!("cannot convert {} to an int", describe(a.get(0))))),
        _ => Err(a.type_error(0, "a string or an int")),
    }
}

/// `bool(arg1)`: `'true'` in any case is true and any other string false;
/// 0 is false and any other int true.
pub(crate) fn bool(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    match a.get(0) {
        Value::Bool(b) => Ok(Value::Bool(*b)),
        Value::String(s) => Ok(Value::Bool(s.eq_ignore_ascii_case("true"))),
        Value::Number(n) if n.is_i64() => Ok(Value::Bool(n.as_i64() != Some(0))),
        _ => Err(a.type_error(0, "a string or an int")),
    }
}

/// `json(arg1)`: parses JSON text.
pub(crate) fn json(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    serde_json::from_str(a.string(0)?)
        .map_err(|e| a.error(format!("could not parse its argument as JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use crate::template::arm::test_support::{eval, eval_err};
    use serde_json::json;

    #[test]
    fn string_conversion() {
        assert_eq!(eval("[string(5)]"), json!("5"));
        assert_eq!(eval("[string(true)]"), json!("True"));
        assert_eq!(eval("[string('x')]"), json!("x"));
        assert_eq!(eval("[string(createArray('a', 1))]"), json!(r#"["a",1]"#));
        assert_eq!(
            eval("[string(createObject('k', 'v'))]"),
            json!(r#"{"k":"v"}"#)
        );
    }

    #[test]
    fn int_conversion() {
        assert_eq!(eval("[int('42')]"), json!(42));
        assert_eq!(eval("[int('-3')]"), json!(-3));
        assert_eq!(eval("[int(7)]"), json!(7));
        assert_eq!(
            eval_err("[int('4x')]"),
            "expr: function 'int' cannot convert '4x' to an int (at position 2)"
        );
        assert_eq!(
            eval_err("[int(true)]"),
            "expr: function 'int' expects argument 1 to be a string or an int, got bool (at position 2)"
        );
    }

    #[test]
    fn bool_conversion() {
        assert_eq!(eval("[bool('TRUE')]"), json!(true));
        assert_eq!(eval("[bool('false')]"), json!(false));
        assert_eq!(eval("[bool('yes')]"), json!(false));
        assert_eq!(eval("[bool(0)]"), json!(false));
        assert_eq!(eval("[bool(-1)]"), json!(true));
        assert_eq!(eval("[bool(true)]"), json!(true));
    }

    #[test]
    fn json_parsing() {
        assert_eq!(eval("[json('{\"a\": [1, 2]}').a[1]]"), json!(2));
        assert_eq!(eval("[json('null')]"), json!(null));
        assert_eq!(eval("[json('true')]"), json!(true));
        assert!(eval_err("[json('{')]")
            .starts_with("expr: function 'json' could not parse its argument as JSON: "));
    }
}
