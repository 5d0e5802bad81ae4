//! Reading JSON objects field by field while recording every problem with its path.
//!
//! AIB matches field names case-insensitively and ignores unknown fields before api-version
//! 2024-02-01, and is strict from then on; [`Fields`] applies that rule in one place.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::template::diagnostics::{Diagnostics, ErrorCode, Path};
use crate::template::model::WireEnum;
use crate::template::ApiVersion;

/// What every reader of one document shares: the findings and the document's api-version.
pub(crate) struct Cx<'d> {
    pub(crate) diags: &'d mut Diagnostics,
    /// The api-version whose fields are available.
    pub(crate) version: ApiVersion,
    /// Case-sensitive names and unknown fields rejected: the document named an api-version
    /// of 2024-02-01 or later. One that names none is read leniently, as AIB's older samples
    /// (which omit it) expect.
    pub(crate) strict: bool,
}

impl Cx<'_> {
    pub(crate) fn error(&mut self, path: &Path, code: ErrorCode, message: impl Into<String>) {
        self.diags.error(path, code, message);
    }

    pub(crate) fn warning(&mut self, path: &Path, code: ErrorCode, message: impl Into<String>) {
        self.diags.warning(path, code, message);
    }

    /// Reports a spelling that matched only case-insensitively: an error where AIB is
    /// case-sensitive, a warning before.
    fn wrong_case(&mut self, path: &Path, what: &str, found: &str, expected: &str) {
        if self.strict {
            self.error(
                path,
                ErrorCode::Other,
                format!(
                    "{what} '{found}' must be spelled '{expected}': api-version {} is case-sensitive",
                    self.version
                ),
            );
        } else {
            self.warning(
                path,
                ErrorCode::Other,
                format!(
                    "{what} '{found}' should be spelled '{expected}'; accepted at api-version {}, rejected from 2024-02-01",
                    self.version
                ),
            );
        }
    }
}

/// The JSON type names used in messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One JSON object being read. Every field asked for is remembered, so [`Fields::finish`]
/// can report the ones nobody asked for.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: Path,
    /// Code for type errors and missing required fields in this object.
    code: ErrorCode,
    known: Vec<&'static str>,
    used: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(map: &'a Map<String, Value>, path: Path, code: ErrorCode) -> Self {
        Self {
            map,
            path,
            code,
            known: Vec::new(),
            used: Vec::new(),
        }
    }

    /// Reads `value` as an object, or reports that it is not one.
    pub(crate) fn of(
        cx: &mut Cx<'_>,
        value: &'a Value,
        path: Path,
        code: ErrorCode,
    ) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Self::new(map, path, code)),
            other => {
                cx.error(
                    &path,
                    code,
                    format!("expected an object, found {}", json_type(other)),
                );
                None
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn code(&self) -> ErrorCode {
        self.code
    }

    /// Changes the code for later problems, once a discriminator has said what this is.
    pub(crate) fn set_code(&mut self, code: ErrorCode) {
        self.code = code;
    }

    /// Path of a field of this object.
    pub(crate) fn at(&self, name: &str) -> Path {
        self.path.field(name)
    }

    /// Whether the field is present (any spelling, not null), without reading it.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.lookup(name).is_some_and(|(_, v)| !v.is_null())
    }

    fn lookup(&self, name: &str) -> Option<(&'a str, &'a Value)> {
        if let Some((key, value)) = self.map.get_key_value(name) {
            return Some((key.as_str(), value));
        }
        self.map
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(key, value)| (key.as_str(), value))
    }

    /// The field's value; `null` counts as absent, as it does for AIB.
    pub(crate) fn get(&mut self, cx: &mut Cx<'_>, name: &'static str) -> Option<&'a Value> {
        self.known.push(name);
        let (key, value) = self.lookup(name)?;
        self.used.push(key);
        if key != name {
            // The path names the key as written, so it can be found in the document.
            cx.wrong_case(&self.path.field(key), "field name", key, name);
        }
        (!value.is_null()).then_some(value)
    }

    /// A field this library knows but does not read, such as AIB's read-only outputs.
    pub(crate) fn ignore(&mut self, cx: &mut Cx<'_>, name: &'static str) {
        self.get(cx, name);
    }

    /// Reads a field added in a later api-version. Before 2024-02-01 AIB ignored unknown
    /// fields, so an early document gets a warning and the field is honoured; a strict
    /// document gets the unknown-field error AIB gives.
    pub(crate) fn get_since(
        &mut self,
        cx: &mut Cx<'_>,
        name: &'static str,
        since: ApiVersion,
    ) -> Option<&'a Value> {
        if cx.version >= since {
            return self.get(cx, name);
        }
        if !self.has(name) {
            self.known.push(name);
            return None;
        }
        let value = self.get(cx, name);
        let message = format!(
            "'{name}' needs api-version {since} or later; this document uses {}",
            cx.version
        );
        if cx.strict {
            cx.error(&self.at(name), ErrorCode::Other, message);
            None
        } else {
            cx.warning(&self.at(name), ErrorCode::Other, message);
            value
        }
    }

    fn type_error(&self, cx: &mut Cx<'_>, name: &str, expected: &str, found: &Value) {
        cx.error(
            &self.at(name),
            self.code,
            format!("expected {expected}, found {}", json_type(found)),
        );
    }

    pub(crate) fn str_opt(&mut self, cx: &mut Cx<'_>, name: &'static str) -> Option<String> {
        let value = self.get(cx, name)?;
        match value {
            Value::String(s) => Some(s.clone()),
            other => {
                self.type_error(cx, name, "a string", other);
                None
            }
        }
    }

    /// A string field added in a later api-version (see [`Fields::get_since`]); empty when absent.
    pub(crate) fn str_since(
        &mut self,
        cx: &mut Cx<'_>,
        name: &'static str,
        since: ApiVersion,
    ) -> String {
        match self.get_since(cx, name, since) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                self.type_error(cx, name, "a string", other);
                String::new()
            }
            None => String::new(),
        }
    }

    /// A string that may be absent; empty when it is.
    pub(crate) fn str_or_empty(&mut self, cx: &mut Cx<'_>, name: &'static str) -> String {
        self.str_opt(cx, name).unwrap_or_default()
    }

    /// A required, non-empty string; reports `what` is missing under this object's code.
    pub(crate) fn str_req(&mut self, cx: &mut Cx<'_>, name: &'static str, what: &str) -> String {
        let present = self.has(name);
        let value = self.str_opt(cx, name);
        match value {
            Some(s) if !s.trim().is_empty() => s,
            Some(s) => {
                cx.error(
                    &self.at(name),
                    self.code,
                    format!("{what} must not be empty"),
                );
                s
            }
            None => {
                if !present {
                    cx.error(&self.at(name), self.code, format!("{what} is required"));
                }
                String::new()
            }
        }
    }

    pub(crate) fn bool_or(&mut self, cx: &mut Cx<'_>, name: &'static str, default: bool) -> bool {
        match self.get(cx, name) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.type_error(cx, name, "true or false", other);
                default
            }
        }
    }

    /// An integer within `range`; `default` when absent.
    pub(crate) fn int_or(
        &mut self,
        cx: &mut Cx<'_>,
        name: &'static str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> i64 {
        let Some(value) = self.get(cx, name) else {
            return default;
        };
        let Some(number) = value.as_i64() else {
            self.type_error(cx, name, "an integer", value);
            return default;
        };
        if !range.contains(&number) {
            let bounds = if *range.end() == i64::MAX {
                format!("at least {}", range.start())
            } else {
                format!("between {} and {}", range.start(), range.end())
            };
            cx.error(
                &self.at(name),
                self.code,
                format!("{number} is out of range; expected an integer {bounds}"),
            );
            return default;
        }
        number
    }

    /// A non-negative integer that fits in u32 (sizes, counts, minutes).
    pub(crate) fn u32_or(&mut self, cx: &mut Cx<'_>, name: &'static str, default: u32) -> u32 {
        let n = self.int_or(cx, name, i64::from(default), 0..=i64::from(u32::MAX));
        u32::try_from(n).unwrap_or(default)
    }

    /// An array field; each element with its path.
    pub(crate) fn array(
        &mut self,
        cx: &mut Cx<'_>,
        name: &'static str,
    ) -> Option<Vec<(Path, &'a Value)>> {
        self.get(cx, name).and_then(|v| self.elements(cx, name, v))
    }

    /// Like [`Fields::array`] for a value already fetched (e.g. with [`Fields::get_since`]).
    pub(crate) fn elements(
        &self,
        cx: &mut Cx<'_>,
        name: &str,
        value: &'a Value,
    ) -> Option<Vec<(Path, &'a Value)>> {
        match value {
            Value::Array(items) => {
                let base = self.at(name);
                Some(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (base.index(i), v))
                        .collect(),
                )
            }
            other => {
                self.type_error(cx, name, "an array", other);
                None
            }
        }
    }

    /// An array of strings.
    pub(crate) fn string_list(
        &mut self,
        cx: &mut Cx<'_>,
        name: &'static str,
    ) -> Option<Vec<String>> {
        let items = self.array(cx, name)?;
        let mut out = Vec::with_capacity(items.len());
        for (path, value) in items {
            match value {
                Value::String(s) => out.push(s.clone()),
                other => cx.error(
                    &path,
                    self.code,
                    format!("expected a string, found {}", json_type(other)),
                ),
            }
        }
        Some(out)
    }

    /// A map of string values, such as tags.
    pub(crate) fn string_map(
        &mut self,
        cx: &mut Cx<'_>,
        name: &'static str,
    ) -> BTreeMap<String, String> {
        match self.get(cx, name) {
            Some(value) => self.strings_in(cx, name, value),
            None => BTreeMap::new(),
        }
    }

    /// Like [`Fields::string_map`] for a value already fetched.
    pub(crate) fn strings_in(
        &self,
        cx: &mut Cx<'_>,
        name: &str,
        value: &Value,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Value::Object(map) = value else {
            self.type_error(cx, name, "an object of strings", value);
            return out;
        };
        for (key, value) in map {
            match value {
                Value::String(s) => {
                    out.insert(key.clone(), s.clone());
                }
                other => cx.error(
                    &self.at(name).field(key),
                    self.code,
                    format!("expected a string, found {}", json_type(other)),
                ),
            }
        }
        out
    }

    /// A nested object field.
    pub(crate) fn object(&mut self, cx: &mut Cx<'_>, name: &'static str) -> Option<Fields<'a>> {
        let value = self.get(cx, name)?;
        Fields::of(cx, value, self.at(name), self.code)
    }

    /// A field holding one of `T`'s spellings.
    pub(crate) fn enum_opt<T: WireEnum>(
        &mut self,
        cx: &mut Cx<'_>,
        name: &'static str,
    ) -> Option<T> {
        let value = self.get(cx, name)?;
        read_enum(cx, value, &self.at(name), self.code, name)
    }

    /// Reports every field nobody asked for: an error where AIB rejects unknown fields, a
    /// warning before.
    pub(crate) fn finish(self, cx: &mut Cx<'_>) {
        for key in self.map.keys() {
            if self.used.contains(&key.as_str()) {
                continue;
            }
            let path = self.path.field(key);
            let expected = self.known.join(", ");
            if cx.strict {
                cx.error(
                    &path,
                    ErrorCode::Other,
                    format!(
                        "unknown field '{key}' (api-version {} rejects unknown fields); expected one of: {expected}",
                        cx.version
                    ),
                );
            } else {
                cx.warning(
                    &path,
                    ErrorCode::Other,
                    format!("unknown field '{key}' is ignored; known fields here: {expected}"),
                );
            }
        }
    }
}

/// Reads a string holding one of `T`'s spellings, case-insensitively before 2024-02-01.
pub(crate) fn read_enum<T: WireEnum>(
    cx: &mut Cx<'_>,
    value: &Value,
    path: &Path,
    code: ErrorCode,
    what: &str,
) -> Option<T> {
    let Value::String(text) = value else {
        cx.error(
            path,
            code,
            format!(
                "expected one of {}, found {}",
                T::expected(),
                json_type(value)
            ),
        );
        return None;
    };
    match_spelling(cx, T::VARIANTS, text, path, what).or_else(|| {
        cx.error(
            path,
            code,
            format!(
                "'{text}' is not a valid {what}; expected one of {}",
                T::expected()
            ),
        );
        None
    })
}

/// Finds `text` among `variants`, exactly or (with a case warning or error) ignoring case.
/// Reports nothing when there is no match at all; the caller words that error.
pub(crate) fn match_spelling<T: Copy>(
    cx: &mut Cx<'_>,
    variants: &[(&'static str, T)],
    text: &str,
    path: &Path,
    what: &str,
) -> Option<T> {
    if let Some((_, v)) = variants.iter().find(|(name, _)| *name == text) {
        return Some(*v);
    }
    let (name, v) = variants
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))?;
    cx.wrong_case(path, what, text, name);
    Some(*v)
}
