//! Numeric functions on 64-bit ints: add, sub, mul, div, mod, min, max.
//! Overflow and division by zero are errors, never panics.

use serde_json::Value;

use super::{Args, CallContext};
use crate::template::arm::value::as_int;

fn binary(a: &Args<'_>, op: fn(i64, i64) -> Option<i64>, failure: &str) -> Result<Value, String> {
    a.exactly(2)?;
    let (x, y) = (a.int(0)?, a.int(1)?);
    op(x, y)
        .map(Value::from)
        .ok_or_else(|| a.error(format!("{failure} ({x}, {y})")))
}

/// `add(operand1, operand2)`.
pub(crate) fn add(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    binary(a, i64::checked_add, "overflowed")
}

/// `sub(operand1, operand2)`.
pub(crate) fn sub(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    binary(a, i64::checked_sub, "overflowed")
}

/// `mul(operand1, operand2)`.
pub(crate) fn mul(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    binary(a, i64::checked_mul, "overflowed")
}

/// `div(operand1, operand2)`: truncates toward zero, like .NET.
pub(crate) fn div(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    binary(a, i64::checked_div, "cannot divide by zero or overflowed")
}

/// `mod(operand1, operand2)`: the remainder takes the dividend's sign.
pub(crate) fn modulo(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    binary(a, i64::checked_rem, "cannot divide by zero or overflowed")
}

/// The ints of `min`/`max`: either the arguments or one array argument.
fn ints(a: &Args<'_>) -> Result<Vec<i64>, String> {
    a.at_least(1)?;
    let items: &[Value] = match (a.len(), a.get(0)) {
        (1, Value::Array(items)) => items,
        _ => &a.values,
    };
    if items.is_empty() {
        return Err(a.error("expects at least one int, got an empty array"));
    }
    items
        .iter()
        .map(|v| as_int(v).ok_or_else(|| a.error("expects ints or one array of ints")))
        .collect()
}

/// `min(arg1, ...)` or `min(array)`.
pub(crate) fn min(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    Ok(Value::from(ints(a)?.into_iter().min().unwrap_or_default()))
}

/// `max(arg1, ...)` or `max(array)`.
pub(crate) fn max(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    Ok(Value::from(ints(a)?.into_iter().max().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use crate::template::arm::test_support::{eval, eval_err};
    use serde_json::json;

    #[test]
    fn arithmetic() {
        assert_eq!(eval("[add(5, -3)]"), json!(2));
        assert_eq!(eval("[sub(5, 7)]"), json!(-2));
        assert_eq!(eval("[mul(4, 3)]"), json!(12));
        assert_eq!(eval("[div(7, 2)]"), json!(3));
        assert_eq!(eval("[div(-7, 2)]"), json!(-3));
        assert_eq!(eval("[mod(7, 3)]"), json!(1));
        assert_eq!(eval("[mod(-7, 3)]"), json!(-1));
    }

    #[test]
    fn arithmetic_errors() {
        assert_eq!(
            eval_err("[div(1, 0)]"),
            "expr: function 'div' cannot divide by zero or overflowed (1, 0) (at position 2)"
        );
        assert_eq!(
            eval_err("[mod(1, 0)]"),
            "expr: function 'mod' cannot divide by zero or overflowed (1, 0) (at position 2)"
        );
        assert_eq!(
            eval_err("[add(9223372036854775807, 1)]"),
            "expr: function 'add' overflowed (9223372036854775807, 1) (at position 2)"
        );
        assert_eq!(
            eval_err("[mul('2', 3)]"),
            "expr: function 'mul' expects argument 1 to be an int, got string (at position 2)"
        );
        assert_eq!(
            eval_err("[sub(1)]"),
            "expr: function 'sub' expects 2 arguments, got 1 (at position 2)"
        );
    }

    #[test]
    fn min_and_max() {
        assert_eq!(eval("[min(3, 1, 2)]"), json!(1));
        assert_eq!(eval("[max(3, 1, 2)]"), json!(3));
        assert_eq!(eval("[max(createArray(-5, -2))]"), json!(-2));
        assert_eq!(eval("[min(4)]"), json!(4));
        assert_eq!(
            eval_err("[min(createArray())]"),
            "expr: function 'min' expects at least one int, got an empty array (at position 2)"
        );
        assert_eq!(
            eval_err("[max(1, 'a')]"),
            "expr: function 'max' expects ints or one array of ints (at position 2)"
        );
    }
}
