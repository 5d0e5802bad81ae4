//! The built-in ARM template functions, grouped by kind.
//!
//! `parameters`, `variables` and `if` need the evaluator itself and live in
//! `eval.rs`; everything else is a plain function of its evaluated arguments
//! and the [`CallContext`], looked up here by lower-cased name.

mod collections;
mod conversion;
mod format;
mod hash;
mod logic;
mod numeric;
mod scope;
mod strings;
mod time;

use serde_json::Value;

use super::environment::ArmEnvironment;
use super::eval::CopyIndex;
use super::limits::Budget;
use super::value::type_name;

/// What a built-in may need beyond its arguments.
pub(crate) struct CallContext<'a> {
    /// The stand-in Azure context.
    pub(crate) env: &'a ArmEnvironment,
    /// The template's `contentVersion`.
    pub(crate) content_version: &'a str,
    /// Whether `utcNow()` is allowed here.
    pub(crate) in_parameter_default: bool,
    /// The enclosing variable copy loop, if any.
    pub(crate) copy: Option<CopyIndex<'a>>,
    /// The evaluation's limits, for functions that must check a result's
    /// size before building it (the evaluator checks every result after).
    pub(crate) budget: &'a Budget,
}

/// A built-in function.
pub(crate) type Builtin = fn(&Args<'_>, &CallContext<'_>) -> Result<Value, String>;

/// Finds the built-in for a lower-cased function name.
pub(crate) fn lookup(lower_name: &str) -> Option<Builtin> {
    let f: Builtin = match lower_name {
        // strings
        "concat" => strings::concat,
        "tolower" => strings::to_lower,
        "toupper" => strings::to_upper,
        "replace" => strings::replace,
        "split" => strings::split,
        "substring" => strings::substring,
        "trim" => strings::trim,
        "startswith" => strings::starts_with,
        "endswith" => strings::ends_with,
        "padleft" => strings::pad_left,
        "base64" => strings::base64,
        "base64tostring" => strings::base64_to_string,
        "format" => format::format,
        // conversion
        "string" => conversion::string,
        "int" => conversion::int,
        "bool" => conversion::bool,
        "json" => conversion::json,
        // collections
        "length" => collections::length,
        "empty" => collections::empty,
        "contains" => collections::contains,
        "first" => collections::first,
        "last" => collections::last,
        "union" => collections::union,
        "createarray" => collections::create_array,
        "createobject" => collections::create_object,
        "coalesce" => collections::coalesce,
        "skip" => collections::skip,
        "take" => collections::take,
        "range" => collections::range,
        "array" => collections::array,
        // logic
        "equals" => logic::equals,
        "not" => logic::not,
        "and" => logic::and,
        "or" => logic::or,
        "true" => logic::true_fn,
        "false" => logic::false_fn,
        "null" => logic::null,
        // numbers
        "add" => numeric::add,
        "sub" => numeric::sub,
        "mul" => numeric::mul,
        "div" => numeric::div,
        "mod" => numeric::modulo,
        "min" => numeric::min,
        "max" => numeric::max,
        // deployment scope
        "resourcegroup" => scope::resource_group,
        "subscription" => scope::subscription,
        "resourceid" => scope::resource_id,
        "subscriptionresourceid" => scope::subscription_resource_id,
        "deployment" => scope::deployment,
        "environment" => scope::environment,
        "copyindex" => scope::copy_index,
        // hashing and time
        "guid" => hash::guid,
        "uniquestring" => hash::unique_string,
        "utcnow" => time::utc_now,
        _ => return None,
    };
    Some(f)
}

/// The names of all built-ins, as documented by Microsoft (plus the three
/// handled by the evaluator).
#[cfg(test)]
pub(crate) const SUPPORTED: &[&str] = &[
    "parameters",
    "variables",
    "if",
    "concat",
    "toLower",
    "toUpper",
    "replace",
    "split",
    "substring",
    "trim",
    "startsWith",
    "endsWith",
    "padLeft",
    "base64",
    "base64ToString",
    "format",
    "string",
    "int",
    "bool",
    "json",
    "length",
    "empty",
    "contains",
    "first",
    "last",
    "union",
    "createArray",
    "createObject",
    "coalesce",
    "skip",
    "take",
    "range",
    "array",
    "equals",
    "not",
    "and",
    "or",
    "true",
    "false",
    "null",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "min",
    "max",
    "resourceGroup",
    "subscription",
    "resourceId",
    "subscriptionResourceId",
    "deployment",
    "environment",
    "copyIndex",
    "guid",
    "uniqueString",
    "utcNow",
];

/// A call's evaluated arguments, with checked accessors whose errors name
/// the function and what it expected.
pub(crate) struct Args<'a> {
    /// The function name as written in the template.
    pub(crate) name: &'a str,
    /// The evaluated arguments.
    pub(crate) values: Vec<Value>,
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "argument"
    } else {
        "arguments"
    }
}

impl Args<'_> {
    /// Number of arguments.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// An error message prefixed with the function name.
    pub(crate) fn error(&self, message: impl std::fmt::Display) -> String {
        format!("function '{}' {message}", self.name)
    }

    /// Requires exactly `n` arguments.
    pub(crate) fn exactly(&self, n: usize) -> Result<(), String> {
        if self.len() == n {
            Ok(())
        } else {
            Err(self.error(format!("expects {n} {}, got {}", plural(n), self.len())))
        }
    }

    /// Requires between `min` and `max` arguments.
    pub(crate) fn between(&self, min: usize, max: usize) -> Result<(), String> {
        if (min..=max).contains(&self.len()) {
            Ok(())
        } else {
            Err(self.error(format!(
                "expects {min} to {max} arguments, got {}",
                self.len()
            )))
        }
    }

    /// Requires at least `min` arguments.
    pub(crate) fn at_least(&self, min: usize) -> Result<(), String> {
        if self.len() >= min {
            Ok(())
        } else {
            Err(self.error(format!(
                "expects at least {min} {}, got {}",
                plural(min),
                self.len()
            )))
        }
    }

    /// The `i`th argument (0-based); callers check the count first.
    pub(crate) fn get(&self, i: usize) -> &Value {
        self.values.get(i).unwrap_or(&Value::Null)
    }

    /// A type error for the `i`th argument.
    pub(crate) fn type_error(&self, i: usize, expected: &str) -> String {
        self.error(format!(
            "expects argument {} to be {expected}, got {}",
            i + 1,
            type_name(self.get(i))
        ))
    }

    /// The `i`th argument as a string.
    pub(crate) fn string(&self, i: usize) -> Result<&str, String> {
        self.get(i)
            .as_str()
            .ok_or_else(|| self.type_error(i, "a string"))
    }

    /// The `i`th argument as an int.
    pub(crate) fn int(&self, i: usize) -> Result<i64, String> {
        self.get(i)
            .as_i64()
            .ok_or_else(|| self.type_error(i, "an int"))
    }

    /// The `i`th argument as a bool.
    pub(crate) fn bool(&self, i: usize) -> Result<bool, String> {
        self.get(i)
            .as_bool()
            .ok_or_else(|| self.type_error(i, "a bool"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(values: Vec<Value>) -> Args<'static> {
        Args { name: "f", values }
    }

    #[test]
    fn every_documented_name_is_known() {
        for name in SUPPORTED {
            let lower = name.to_ascii_lowercase();
            let special = matches!(lower.as_str(), "parameters" | "variables" | "if");
            assert!(special || lookup(&lower).is_some(), "{name} missing");
        }
        assert!(lookup("reference").is_none());
        assert!(lookup("newguid").is_none());
    }

    #[test]
    fn count_messages() {
        assert_eq!(
            args(vec![]).exactly(1).unwrap_err(),
            "function 'f' expects 1 argument, got 0"
        );
        assert_eq!(
            args(vec![json!(1)]).exactly(2).unwrap_err(),
            "function 'f' expects 2 arguments, got 1"
        );
        assert_eq!(
            args(vec![]).between(2, 3).unwrap_err(),
            "function 'f' expects 2 to 3 arguments, got 0"
        );
        assert_eq!(
            args(vec![]).at_least(1).unwrap_err(),
            "function 'f' expects at least 1 argument, got 0"
        );
    }

    #[test]
    fn typed_accessors() {
        let a = args(vec![json!("s"), json!(2), json!(true), json!([1])]);
        assert_eq!(a.string(0).unwrap(), "s");
        assert_eq!(a.int(1).unwrap(), 2);
        assert!(a.bool(2).unwrap());
        assert_eq!(a.get(3), &json!([1]));
        assert_eq!(a.get(9), &Value::Null);
        assert_eq!(
            a.int(0).unwrap_err(),
            "function 'f' expects argument 1 to be an int, got string"
        );
        assert_eq!(
            a.string(3).unwrap_err(),
            "function 'f' expects argument 4 to be a string, got array"
        );
    }
}
