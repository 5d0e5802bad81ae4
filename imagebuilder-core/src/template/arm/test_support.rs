//! Shared helpers for unit tests: a fixed resolver and one-line evaluation.

use serde_json::{json, Value};

use super::environment::ArmEnvironment;
use super::error::ArmError;
use super::eval::{evaluate_string, EvalContext, Resolver};
use super::limits::Budget;

/// A resolver with one parameter (`name` = `img`) and one variable
/// (`obj` = `{"inner": {"list": ["a", "b"]}}`).
#[derive(Default)]
pub(crate) struct TestResolver {
    env: ArmEnvironment,
    budget: Budget,
}

impl Resolver for TestResolver {
    fn parameter(&self, name: &str) -> Option<Result<Value, Vec<ArmError>>> {
        name.eq_ignore_ascii_case("name").then(|| Ok(json!("img")))
    }

    fn variable(&self, name: &str) -> Option<Result<Value, Vec<ArmError>>> {
        (name == "obj").then(|| Ok(json!({"inner": {"list": ["a", "b"]}})))
    }

    fn environment(&self) -> &ArmEnvironment {
        &self.env
    }

    fn content_version(&self) -> &str {
        "1.0.0.0"
    }

    fn budget(&self) -> &Budget {
        &self.budget
    }
}

/// Evaluates `s` at path `expr`, panicking on error.
pub(crate) fn eval(s: &str) -> Value {
    match evaluate_string(s, "expr", &TestResolver::default(), EvalContext::default()) {
        Ok(v) => v,
        Err(e) => panic!("{s} failed: {e:?}"),
    }
}

/// Evaluates `s` at path `expr` and returns the first error as text.
pub(crate) fn eval_err(s: &str) -> String {
    match evaluate_string(s, "expr", &TestResolver::default(), EvalContext::default()) {
        Ok(v) => panic!("{s} unexpectedly gave {v}"),
        Err(e) => e[0].to_string(),
    }
}
