//! Array and object functions: length, empty, contains, first, last, union,
//! createArray, createObject, coalesce, skip, take, range, array.

use serde_json::{Map, Value};

use super::{Args, CallContext};
use crate::template::arm::value::{to_text, type_name, ValueSet};

/// `length(arg1)`: characters of a string, items of an array, properties
/// of an object.
pub(crate) fn length(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    let n = match a.get(0) {
        Value::String(s) => s.chars().count(),
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        _ => return Err(a.type_error(0, "a string, an array or an object")),
    };
    Ok(Value::from(n as u64))
}

/// `empty(itemToTest)`: null counts as empty.
pub(crate) fn empty(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    let e = match a.get(0) {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => return Err(a.type_error(0, "a string, an array or an object")),
    };
    Ok(Value::Bool(e))
}

/// `contains(container, itemToFind)`: substring (case-sensitive), array
/// element, or object key (case-insensitive), as documented for ARM.
pub(crate) fn contains(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(2)?;
    let item = a.get(1);
    let found = match a.get(0) {
        Value::String(s) => match item {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => s.contains(&to_text(item)),
            _ => return Err(a.type_error(1, "a string or an int")),
        },
        Value::Array(items) => items.contains(item),
        Value::Object(map) => match item {
            Value::String(k) => map.keys().any(|key| key.eq_ignore_ascii_case(k)),
            _ => return Err(a.type_error(1, "a string when searching an object")),
        },
        _ => return Err(a.type_error(0, "a string, an array or an object")),
    };
    Ok(Value::Bool(found))
}

/// `first(arg1)`: first item (null when empty) or first character.
pub(crate) fn first(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    match a.get(0) {
        Value::Array(items) => Ok(items.first().cloned().unwrap_or(Value::Null)),
        Value::String(s) => Ok(Value::String(s.chars().take(1).collect())),
        _ => Err(a.type_error(0, "an array or a string")),
    }
}

/// `last(arg1)`: last item (null when empty) or last character.
pub(crate) fn last(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    match a.get(0) {
        Value::Array(items) => Ok(items.last().cloned().unwrap_or(Value::Null)),
        Value::String(s) => Ok(Value::String(
            s.chars().last().map(String::from).unwrap_or_default(),
        )),
        _ => Err(a.type_error(0, "an array or a string")),
    }
}

/// Merges `from` into `into`: nested objects merge recursively, anything
/// else (arrays included) is replaced by the later value, as ARM's union.
fn merge_objects(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(k), v) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_objects(existing, incoming)
            }
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// `union(arg1, arg2, ...)`: all arrays (distinct items, in order) or all
/// objects (later keys win, nested objects merged).
pub(crate) fn union(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.at_least(2)?;
    if a.values.iter().all(Value::is_array) {
        // Hashed, not searched: a linear search per item is quadratic.
        let mut seen = ValueSet::new();
        let out = a
            .values
            .iter()
            .filter_map(Value::as_array)
            .flatten()
            .filter(|v| seen.insert(v))
            .cloned()
            .collect();
        return Ok(Value::Array(out));
    }
    if a.values.iter().all(Value::is_object) {
        let mut out = Map::new();
        for m in a.values.iter().filter_map(Value::as_object) {
            merge_objects(&mut out, m);
        }
        return Ok(Value::Object(out));
    }
    let kinds: Vec<&str> = a.values.iter().map(type_name).collect();
    Err(a.error(format!(
        "expects all arrays or all objects, got {}",
        kinds.join(", ")
    )))
}

/// `createArray(arg1, ...)`.
pub(crate) fn create_array(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    Ok(Value::Array(a.values.clone()))
}

/// `createObject(key1, value1, key2, value2, ...)`.
pub(crate) fn create_object(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    if !a.len().is_multiple_of(2) {
        return Err(a.error(format!(
            "expects key/value pairs (an even number of arguments), got {}",
            a.len()
        )));
    }
    let mut map = Map::new();
    for i in (0..a.len()).step_by(2) {
        map.insert(a.string(i)?.to_string(), a.get(i + 1).clone());
    }
    Ok(Value::Object(map))
}

/// `coalesce(arg1, ...)`: the first non-null argument, or null.
pub(crate) fn coalesce(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.at_least(1)?;
    Ok(a.values
        .iter()
        .find(|v| !v.is_null())
        .cloned()
        .unwrap_or(Value::Null))
}

/// Clamps a count argument to `0..=len`.
fn clamp(n: i64, len: usize) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX).min(len)
}

/// `skip(originalValue, numberToSkip)` on an array or a string.
pub(crate) fn skip(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(2)?;
    let n = a.int(1)?;
    match a.get(0) {
        Value::Array(items) => Ok(Value::Array(items[clamp(n, items.len())..].to_vec())),
        Value::String(s) => {
            let chars: Vec<char> = s.chars().collect();
            Ok(Value::String(
                chars[clamp(n, chars.len())..].iter().collect(),
            ))
        }
        _ => Err(a.type_error(0, "an array or a string")),
    }
}

/// `take(originalValue, numberToTake)` on an array or a string.
pub(crate) fn take(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(2)?;
    let n = a.int(1)?;
    match a.get(0) {
        Value::Array(items) => Ok(Value::Array(items[..clamp(n, items.len())].to_vec())),
        Value::String(s) => {
            let chars: Vec<char> = s.chars().collect();
            Ok(Value::String(
                chars[..clamp(n, chars.len())].iter().collect(),
            ))
        }
        _ => Err(a.type_error(0, "an array or a string")),
    }
}

/// `range(startIndex, count)`.
pub(crate) fn range(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(2)?;
    let (start, count) = (a.int(0)?, a.int(1)?);
    let max = c.budget.limits().max_range_count;
    if !(0..=max).contains(&count) {
        return Err(a.error(format!("count {count} is out of range 0..={max}")));
    }
    if start.checked_add(count).is_none() {
        return Err(a.error("overflowed"));
    }
    Ok(Value::Array(
        (start..start + count).map(Value::from).collect(),
    ))
}

/// `array(convertToArray)`: wraps a non-array value in an array.
pub(crate) fn array(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    match a.get(0) {
        Value::Array(items) => Ok(Value::Array(items.clone())),
        other => Ok(Value::Array(vec![other.clone()])),
    }
}

#[cfg(test)]
mod tests {
    use crate::template::arm::test_support::{eval, eval_err};
    use serde_json::json;

    #[test]
    fn length_and_empty() {
        assert_eq!(eval("[length('héllo')]"), json!(5));
        assert_eq!(eval("[length(createArray(1, 2))]"), json!(2));
        assert_eq!(eval("[length(createObject('a', 1))]"), json!(1));
        assert_eq!(
            eval_err("[length(3)]"),
            "expr: function 'length' expects argument 1 to be a string, an array or an object, got int (at position 2)"
        );
        assert_eq!(eval("[empty('')]"), json!(true));
        assert_eq!(eval("[empty(createArray())]"), json!(true));
        assert_eq!(eval("[empty(createObject())]"), json!(true));
        assert_eq!(eval("[empty(null())]"), json!(true));
        assert_eq!(eval("[empty('x')]"), json!(false));
        assert_eq!(eval("[empty(createArray(1))]"), json!(false));
    }

    #[test]
    fn contains_each_container() {
        assert_eq!(eval("[contains('OneTwoThree', 'e')]"), json!(true));
        assert_eq!(eval("[contains('OneTwoThree', 'z')]"), json!(false));
        assert_eq!(eval("[contains('OneTwoThree', 'one')]"), json!(false));
        assert_eq!(eval("[contains('a1', 1)]"), json!(true));
        assert_eq!(
            eval("[contains(createArray('one', 'two'), 'two')]"),
            json!(true)
        );
        assert_eq!(
            eval("[contains(createArray('one', 'two'), 'Two')]"),
            json!(false)
        );
        assert_eq!(
            eval("[contains(createObject('One', 1), 'one')]"),
            json!(true)
        );
        assert_eq!(
            eval("[contains(createObject('One', 1), 'two')]"),
            json!(false)
        );
        assert_eq!(
            eval_err("[contains(1, 1)]"),
            "expr: function 'contains' expects argument 1 to be a string, an array or an object, got int (at position 2)"
        );
    }

    #[test]
    fn first_and_last() {
        assert_eq!(eval("[first(createArray('a', 'b'))]"), json!("a"));
        assert_eq!(eval("[last(createArray('a', 'b'))]"), json!("b"));
        assert_eq!(eval("[first('xyz')]"), json!("x"));
        assert_eq!(eval("[last('xyz')]"), json!("z"));
        assert_eq!(eval("[first(createArray())]"), json!(null));
        assert_eq!(eval("[last('')]"), json!(""));
        assert_eq!(
            eval_err("[first(1)]"),
            "expr: function 'first' expects argument 1 to be an array or a string, got int (at position 2)"
        );
    }

    #[test]
    fn union_of_arrays_and_objects() {
        assert_eq!(
            eval("[union(createArray(1, 2, 3), createArray(3, 4), createArray(1))]"),
            json!([1, 2, 3, 4])
        );
        assert_eq!(
            eval("[union(json('{\"a\":1,\"n\":{\"x\":1,\"y\":[1]}}'), json('{\"b\":2,\"n\":{\"y\":[2]}}'))]"),
            json!({"a": 1, "b": 2, "n": {"x": 1, "y": [2]}})
        );
        assert_eq!(
            eval("[union(createArray(createObject('a', 1)), createArray(json('{\"a\":1}'), 2))]"),
            json!([{"a": 1}, 2])
        );
        assert_eq!(
            eval_err("[union(createArray(1), createObject())]"),
            "expr: function 'union' expects all arrays or all objects, got array, object (at position 2)"
        );
    }

    #[test]
    fn create_array_and_object() {
        assert_eq!(eval("[createArray()]"), json!([]));
        assert_eq!(eval("[createArray('a', 1, true)]"), json!(["a", 1, true]));
        assert_eq!(
            eval("[createObject('a', 1, 'b', createArray(2))]"),
            json!({"a": 1, "b": [2]})
        );
        assert_eq!(
            eval_err("[createObject('a')]"),
            "expr: function 'createObject' expects key/value pairs (an even number of arguments), got 1 (at position 2)"
        );
        assert_eq!(
            eval_err("[createObject(1, 2)]"),
            "expr: function 'createObject' expects argument 1 to be a string, got int (at position 2)"
        );
    }

    #[test]
    fn coalesce_first_non_null() {
        assert_eq!(eval("[coalesce(null(), null(), 'x', 'y')]"), json!("x"));
        assert_eq!(eval("[coalesce(null(), '')]"), json!(""));
        assert_eq!(eval("[coalesce(null())]"), json!(null));
    }

    #[test]
    fn skip_take_range_array() {
        assert_eq!(eval("[skip(createArray(1, 2, 3), 1)]"), json!([2, 3]));
        assert_eq!(eval("[skip('abc', 5)]"), json!(""));
        assert_eq!(eval("[take(createArray(1, 2, 3), 2)]"), json!([1, 2]));
        assert_eq!(eval("[take('abc', -1)]"), json!(""));
        assert_eq!(eval("[range(3, 3)]"), json!([3, 4, 5]));
        assert_eq!(eval("[array('a')]"), json!(["a"]));
        assert_eq!(eval("[array(createArray(1))]"), json!([1]));
        assert_eq!(
            eval_err("[range(0, 10001)]"),
            "expr: function 'range' count 10001 is out of range 0..=10000 (at position 2)"
        );
        assert_eq!(
            eval_err("[range(9223372036854775807, 1)]"),
            "expr: function 'range' overflowed (at position 2)"
        );
        assert_eq!(eval("[skip('abc', 9223372036854775807)]"), json!(""));
        assert_eq!(
            eval("[take(createArray(1), -9223372036854775808)]"),
            json!([])
        );
    }

    #[test]
    fn union_of_large_arrays_is_not_quadratic() {
        let start = std::time::Instant::now();
        let ranges: Vec<String> = (0..9)
            .map(|i| format!("range({}, 10000)", i * 5000))
            .collect();
        let v = eval(&format!("[length(union({}))]", ranges.join(", ")));
        assert_eq!(v, json!(50_000));
        // The linear search took minutes here (even in a release build).
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
    }
}
