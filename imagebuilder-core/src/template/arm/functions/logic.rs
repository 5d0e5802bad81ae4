//! Logical functions: equals, not, and, or, true, false, null.

use serde_json::Value;

use super::{Args, CallContext};

/// `equals(arg1, arg2)`: deep equality; strings compare case-sensitively.
pub(crate) fn equals(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(2)?;
    Ok(Value::Bool(a.get(0) == a.get(1)))
}

/// `not(arg1)`.
pub(crate) fn not(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    Ok(Value::Bool(!a.bool(0)?))
}

/// `and(arg1, arg2, ...)`: every argument must be a bool.
pub(crate) fn and(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.at_least(2)?;
    let mut all = true;
    for i in 0..a.len() {
        all &= a.bool(i)?;
    }
    Ok(Value::Bool(all))
}

/// `or(arg1, arg2, ...)`: every argument must be a bool.
pub(crate) fn or(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.at_least(2)?;
    let mut any = false;
    for i in 0..a.len() {
        any |= a.bool(i)?;
    }
    Ok(Value::Bool(any))
}

/// `true()`.
pub(crate) fn true_fn(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(0)?;
    Ok(Value::Bool(true))
}

/// `false()`.
pub(crate) fn false_fn(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(0)?;
    Ok(Value::Bool(false))
}

/// `null()`.
pub(crate) fn null(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(0)?;
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use crate::template::arm::test_support::{eval, eval_err};
    use serde_json::json;

    #[test]
    fn equality_is_deep_and_case_sensitive() {
        assert_eq!(eval("[equals(1, 1)]"), json!(true));
        assert_eq!(eval("[equals('a', 'A')]"), json!(false));
        assert_eq!(
            eval("[equals(createArray('a', 1), createArray('a', 1))]"),
            json!(true)
        );
        assert_eq!(
            eval("[equals(createObject('a', 'b'), json('{\"a\":\"b\"}'))]"),
            json!(true)
        );
        assert_eq!(eval("[equals(1, '1')]"), json!(false));
    }

    #[test]
    fn boolean_operators() {
        assert_eq!(eval("[not(true)]"), json!(false));
        assert_eq!(eval("[and(true, true, false)]"), json!(false));
        assert_eq!(eval("[and(true, true)]"), json!(true));
        assert_eq!(eval("[or(false, false, true)]"), json!(true));
        assert_eq!(eval("[or(false, false)]"), json!(false));
        assert_eq!(eval("[and(true(), not(false()))]"), json!(true));
        assert_eq!(eval("[null()]"), json!(null));
        assert_eq!(
            eval_err("[and(true)]"),
            "expr: function 'and' expects at least 2 arguments, got 1 (at position 2)"
        );
        assert_eq!(
            eval_err("[or(true, 'x')]"),
            "expr: function 'or' expects argument 2 to be a bool, got string (at position 2)"
        );
        assert_eq!(
            eval_err("[not(1)]"),
            "expr: function 'not' expects argument 1 to be a bool, got int (at position 2)"
        );
    }
}
