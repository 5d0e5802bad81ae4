//! Helpers for treating JSON values as ARM template values.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

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
///
/// Only the first [`DESCRIBE_LIMIT`] characters are rendered, so describing
/// a huge value costs no more than describing a small one.
pub(crate) fn describe(v: &Value) -> String {
    // Enough bytes for LIMIT characters of any width, plus one to see that
    // there is more.
    let mut w = Capped {
        text: Vec::new(),
        cap: DESCRIBE_LIMIT * 4 + 4,
    };
    match v {
        Value::String(s) => {
            w.text.push(b'\'');
            let _ = std::io::Write::write_all(&mut w, s.as_bytes());
            let _ = std::io::Write::write_all(&mut w, b"'");
        }
        // Stops with an error once the cap is reached; what was written is kept.
        other => {
            let _ = serde_json::to_writer(&mut w, other);
        }
    }
    let text = String::from_utf8_lossy(&w.text);
    if text.chars().count() > DESCRIBE_LIMIT {
        let cut: String = text.chars().take(DESCRIBE_LIMIT).collect();
        format!("{cut}...")
    } else {
        text.into_owned()
    }
}

/// Characters [`describe`] shows before cutting a value short.
const DESCRIBE_LIMIT: usize = 80;

/// A writer that keeps at most `cap` bytes and then fails.
struct Capped {
    text: Vec<u8>,
    cap: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.cap.saturating_sub(self.text.len());
        if room == 0 {
            return Err(std::io::Error::other("long enough"));
        }
        let n = buf.len().min(room);
        self.text.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Joins names for an error message: at most [`LISTED_NAMES`] of them,
/// then how many more there are; `none` when there are none.
pub(crate) fn list_names<'n>(names: impl Iterator<Item = &'n str>, none: &str) -> String {
    let mut shown = Vec::new();
    let mut more = 0usize;
    for n in names {
        if shown.len() < LISTED_NAMES {
            shown.push(n);
        } else {
            more += 1;
        }
    }
    match (shown.is_empty(), more) {
        (true, _) => none.to_string(),
        (false, 0) => shown.join(", "),
        (false, more) => format!("{} and {more} more", shown.join(", ")),
    }
}

/// Names an error message lists before summarising the rest.
const LISTED_NAMES: usize = 20;

/// `a` or `an` and the ARM type name of a value: "an int", "a string".
pub(crate) fn a_type_name(v: &Value) -> String {
    let name = type_name(v);
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// A set of values with expected constant-time lookups, for de-duplicating
/// and membership tests on large arrays.
///
/// serde_json values cannot be hashed directly; [`hash_value`] hashes
/// them consistently with `==`, and equal hashes are confirmed with `==`.
pub(crate) struct ValueSet<'v> {
    buckets: HashMap<u64, Vec<&'v Value>>,
}

impl<'v> ValueSet<'v> {
    /// An empty set.
    pub(crate) fn new() -> Self {
        ValueSet {
            buckets: HashMap::new(),
        }
    }

    /// Adds `v`; false when an equal value was already there.
    pub(crate) fn insert(&mut self, v: &'v Value) -> bool {
        let bucket = self.buckets.entry(hash_of(v)).or_default();
        if bucket.contains(&v) {
            return false;
        }
        bucket.push(v);
        true
    }

    /// Whether a value equal to `v` is in the set.
    pub(crate) fn contains(&self, v: &Value) -> bool {
        self.buckets
            .get(&hash_of(v))
            .is_some_and(|bucket| bucket.contains(&v))
    }
}

fn hash_of(v: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    hash_value(v, &mut h);
    h.finish()
}

/// Hashes `v` so that values equal under `==` hash equally: object members
/// are combined in an order-independent way, since map equality ignores
/// order when serde_json keeps insertion order.
fn hash_value(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, b).hash(h),
        Value::Number(n) => {
            2u8.hash(h);
            if let Some(u) = n.as_u64() {
                (0u8, u).hash(h);
            } else if let Some(i) = n.as_i64() {
                (1u8, i).hash(h);
            } else {
                (2u8, n.as_f64().map(f64::to_bits)).hash(h);
            }
        }
        Value::String(s) => (3u8, s).hash(h),
        Value::Array(items) => {
            (4u8, items.len()).hash(h);
            for item in items {
                hash_value(item, h);
            }
        }
        Value::Object(map) => {
            (5u8, map.len()).hash(h);
            let mut members = 0u64;
            for (k, item) in map {
                let mut m = DefaultHasher::new();
                k.hash(&mut m);
                hash_value(item, &mut m);
                members = members.wrapping_add(m.finish());
            }
            members.hash(h);
        }
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
        assert_eq!(describe(&json!({"a": [1, "b"]})), r#"{"a":[1,"b"]}"#);
        let long = "x".repeat(100);
        let d = describe(&json!(long));
        assert!(d.ends_with("..."));
        assert_eq!(d.chars().count(), 83);
        let wide = "é".repeat(100);
        assert_eq!(describe(&json!(wide)).chars().count(), 83);
        let big: Vec<u32> = (0..1_000_000).collect();
        let d = describe(&json!(big));
        assert!(d.starts_with("[0,1,2,"));
        assert_eq!(d.chars().count(), 83);
    }

    #[test]
    fn name_lists_are_capped() {
        assert_eq!(list_names([].into_iter(), "(none)"), "(none)");
        assert_eq!(list_names(["a", "b"].into_iter(), "-"), "a, b");
        let many: Vec<String> = (0..25).map(|i| format!("n{i}")).collect();
        let shown = list_names(many.iter().map(String::as_str), "-");
        assert!(shown.starts_with("n0, n1, "));
        assert!(shown.ends_with("n19 and 5 more"));
    }

    #[test]
    fn articles() {
        assert_eq!(a_type_name(&json!({})), "an object");
        assert_eq!(a_type_name(&json!(1)), "an int");
        assert_eq!(a_type_name(&json!([])), "an array");
        assert_eq!(a_type_name(&json!("s")), "a string");
    }

    #[test]
    fn value_sets_agree_with_equality() {
        let values = [
            json!(null),
            json!(1),
            json!(-1),
            json!(1.5),
            json!("1"),
            json!([1, 2]),
            json!([2, 1]),
            json!({"a": 1, "b": [2]}),
            json!({"a": 1}),
        ];
        let mut set = ValueSet::new();
        for v in &values {
            assert!(set.insert(v));
        }
        for v in &values {
            assert!(set.contains(v));
            assert!(!set.insert(v));
        }
        assert!(set.contains(&json!({"b": [2], "a": 1})));
        assert!(!set.contains(&json!({"a": 2})));
        assert!(!set.contains(&json!(2)));
    }
}
