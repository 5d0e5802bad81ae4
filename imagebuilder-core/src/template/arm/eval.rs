//! Evaluating parsed expressions and whole JSON trees of template values.

use serde_json::{Map, Value};

use super::environment::ArmEnvironment;
use super::error::ArmError;
use super::expression::{classify, TemplateString};
use super::functions::{self, Args, CallContext};
use super::limits::Budget;
use super::parser::{parse, Expr, ParseError};
use super::path;
use super::value::{as_int, describe, get_property, list_names, type_name};

/// Where `parameters()` and `variables()` get their values from.
pub(crate) trait Resolver {
    /// The value of a declared parameter; `None` when it is not declared.
    fn parameter(&self, name: &str) -> Option<Result<Value, Vec<ArmError>>>;
    /// The value of a declared variable; `None` when it is not declared.
    fn variable(&self, name: &str) -> Option<Result<Value, Vec<ArmError>>>;
    /// The stand-in Azure context.
    fn environment(&self) -> &ArmEnvironment;
    /// The template's `contentVersion`, for `deployment()`.
    fn content_version(&self) -> &str;
    /// The limits and counters of this evaluation.
    fn budget(&self) -> &Budget;
}

/// The loop a `copyIndex()` call refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CopyIndex<'a> {
    /// The copy loop's `name`.
    pub(crate) name: &'a str,
    /// The current iteration, from 0.
    pub(crate) index: i64,
}

/// Where in the template an expression is being evaluated; some functions
/// are only allowed in some places.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EvalContext<'a> {
    /// Evaluating a parameter's `defaultValue`: `utcNow()` is allowed and
    /// `variables()` is not.
    pub(crate) in_parameter_default: bool,
    /// Inside a variable `copy` loop.
    pub(crate) copy: Option<CopyIndex<'a>>,
}

/// Evaluates a JSON string: an expression, an escaped literal or plain text.
pub(crate) fn evaluate_string(
    s: &str,
    at: &str,
    resolver: &dyn Resolver,
    ctx: EvalContext<'_>,
) -> Result<Value, Vec<ArmError>> {
    let budget = resolver.budget();
    if let Some(e) = budget.exhausted() {
        return Err(vec![e]);
    }
    match classify(s) {
        TemplateString::Literal(text) | TemplateString::Escaped(text) => {
            Ok(Value::String(text.to_string()))
        }
        TemplateString::Expression(text) => {
            let expr = parse(text, budget.room()).map_err(|e| match e {
                ParseError::TooDeep => vec![budget.too_deep(at)],
                ParseError::Syntax(e) => vec![ArmError::new(
                    at,
                    format!(
                        "invalid expression: {e} (a literal string that starts with '[' and ends with ']' must be written with '[[')"
                    ),
                )],
            })?;
            Evaluator { resolver, ctx, at }.eval(&expr)
        }
    }
}

/// Evaluates every string in `value` (object keys included), collecting
/// all errors rather than stopping at the first.
pub(crate) fn evaluate_tree(
    value: &Value,
    at: &str,
    resolver: &dyn Resolver,
    ctx: EvalContext<'_>,
) -> Result<Value, Vec<ArmError>> {
    let Some(_level) = resolver.budget().enter() else {
        return Err(vec![resolver.budget().too_deep(at)]);
    };
    match value {
        Value::String(s) => evaluate_string(s, at, resolver, ctx),
        Value::Array(items) => {
            let mut errors = Vec::new();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match evaluate_tree(item, &path::index(at, i), resolver, ctx) {
                    Ok(v) => out.push(v),
                    Err(e) => errors.extend(e),
                }
            }
            if errors.is_empty() {
                Ok(Value::Array(out))
            } else {
                Err(errors)
            }
        }
        Value::Object(map) => {
            let mut errors = Vec::new();
            let mut out = Map::new();
            for (k, v) in map {
                let child = path::key(at, k);
                let key = match evaluate_string(k, &child, resolver, ctx) {
                    Ok(Value::String(key)) => Some(key),
                    Ok(other) => {
                        errors.push(ArmError::new(
                            &child,
                            format!(
                                "an object key expression must produce a string, got {}",
                                type_name(&other)
                            ),
                        ));
                        None
                    }
                    Err(e) => {
                        errors.extend(e);
                        None
                    }
                };
                let val = evaluate_tree(v, &child, resolver, ctx);
                match (key, val) {
                    (Some(key), Ok(val)) => {
                        if out.contains_key(&key) {
                            errors.push(ArmError::new(
                                &child,
                                format!("key '{key}' appears more than once after evaluation"),
                            ));
                        } else {
                            out.insert(key, val);
                        }
                    }
                    (_, Err(e)) => errors.extend(e),
                    (None, Ok(_)) => {}
                }
            }
            if errors.is_empty() {
                Ok(Value::Object(out))
            } else {
                Err(errors)
            }
        }
        other => Ok(other.clone()),
    }
}

struct Evaluator<'a> {
    resolver: &'a dyn Resolver,
    ctx: EvalContext<'a>,
    at: &'a str,
}

impl Evaluator<'_> {
    fn budget(&self) -> &Budget {
        self.resolver.budget()
    }

    fn fail(&self, pos: usize, message: impl std::fmt::Display) -> Vec<ArmError> {
        let error = ArmError::new(self.at, format!("{message} (at position {pos})"));
        self.budget().note(&error);
        vec![error]
    }

    fn eval(&self, expr: &Expr) -> Result<Value, Vec<ArmError>> {
        if let Some(e) = self.budget().exhausted() {
            return Err(vec![e]);
        }
        let Some(_level) = self.budget().enter() else {
            return Err(vec![self.budget().too_deep(self.at)]);
        };
        match expr {
            Expr::Str(s) => Ok(Value::String(s.clone())),
            Expr::Int(i) => Ok(Value::from(*i)),
            Expr::Bool(b) => Ok(Value::Bool(*b)),
            Expr::Property { target, name, pos } => {
                let target = self.eval(target)?;
                let value = self.property(&target, name, *pos)?;
                self.produced(value, *pos, format_args!("reading property '{name}'"))
            }
            Expr::Index { target, index, pos } => {
                let target = self.eval(target)?;
                let index = self.eval(index)?;
                let value = self.index(&target, &index, *pos)?;
                self.produced(value, *pos, "indexing")
            }
            Expr::Call { name, pos, args } => self.call(name, *pos, args),
        }
    }

    /// Checks a value a step produced against the budget; `what` names the
    /// step in the error.
    fn produced(
        &self,
        value: Value,
        pos: usize,
        what: impl std::fmt::Display,
    ) -> Result<Value, Vec<ArmError>> {
        match self.budget().charge_value(&value) {
            Ok(()) => Ok(value),
            Err(m) => Err(self.fail(pos, format!("{what} {m}"))),
        }
    }

    fn property(&self, target: &Value, name: &str, pos: usize) -> Result<Value, Vec<ArmError>> {
        let Value::Object(map) = target else {
            return Err(self.fail(
                pos,
                format!(
                    "cannot read property '{name}' of a value of type {}",
                    type_name(target)
                ),
            ));
        };
        get_property(map, name).cloned().ok_or_else(|| {
            self.fail(
                pos,
                format!(
                    "property '{name}' does not exist; available properties are: {}",
                    list_names(map.keys().map(String::as_str), "(none)")
                ),
            )
        })
    }

    fn index(&self, target: &Value, index: &Value, pos: usize) -> Result<Value, Vec<ArmError>> {
        match (target, index) {
            (Value::Array(items), i) if as_int(i).is_some() => {
                let i = as_int(i).unwrap_or_default();
                usize::try_from(i)
                    .ok()
                    .and_then(|u| items.get(u))
                    .cloned()
                    .ok_or_else(|| {
                        self.fail(
                            pos,
                            format!(
                                "index {i} is out of range for an array of length {}",
                                items.len()
                            ),
                        )
                    })
            }
            (Value::Object(_), Value::String(name)) => self.property(target, name, pos),
            _ => Err(self.fail(
                pos,
                format!(
                    "cannot index a value of type {} with {} {}",
                    type_name(target),
                    type_name(index),
                    describe(index)
                ),
            )),
        }
    }

    /// A call. Built-ins and lookups count their result against the
    /// budget; `if` hands back what its branch produced and counted.
    fn call(&self, name: &str, pos: usize, args: &[Expr]) -> Result<Value, Vec<ArmError>> {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            // `if` evaluates only the branch it picks, so the other branch
            // may hold expressions that would fail.
            "if" => {
                if args.len() != 3 {
                    return Err(self.fail(
                        pos,
                        format!("function '{name}' expects 3 arguments, got {}", args.len()),
                    ));
                }
                match self.eval(&args[0])? {
                    Value::Bool(true) => self.eval(&args[1]),
                    Value::Bool(false) => self.eval(&args[2]),
                    other => Err(self.fail(
                        pos,
                        format!(
                            "function '{name}' expects argument 1 to be a bool, got {}",
                            type_name(&other)
                        ),
                    )),
                }
            }
            "parameters" | "variables" => self.lookup(name, &lower, pos, args),
            _ => {
                let Some(builtin) = functions::lookup(&lower) else {
                    return Err(
                        self.fail(pos, format!("unsupported ARM template function '{name}'"))
                    );
                };
                let values = self.eval_args(args)?;
                let call_ctx = CallContext {
                    env: self.resolver.environment(),
                    content_version: self.resolver.content_version(),
                    in_parameter_default: self.ctx.in_parameter_default,
                    copy: self.ctx.copy,
                    budget: self.budget(),
                };
                let value =
                    builtin(&Args { name, values }, &call_ctx).map_err(|m| self.fail(pos, m))?;
                self.produced(value, pos, format_args!("function '{name}'"))
            }
        }
    }

    fn eval_args(&self, args: &[Expr]) -> Result<Vec<Value>, Vec<ArmError>> {
        let mut values = Vec::with_capacity(args.len());
        let mut errors = Vec::new();
        for a in args {
            match self.eval(a) {
                Ok(v) => values.push(v),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(values)
        } else {
            Err(errors)
        }
    }

    /// `parameters('x')` and `variables('x')`.
    fn lookup(
        &self,
        name: &str,
        lower: &str,
        pos: usize,
        args: &[Expr],
    ) -> Result<Value, Vec<ArmError>> {
        let values = self.eval_args(args)?;
        let key = match values.as_slice() {
            [Value::String(s)] => s.as_str(),
            [other] => {
                return Err(self.fail(
                    pos,
                    format!(
                        "function '{name}' expects argument 1 to be a string, got {}",
                        type_name(other)
                    ),
                ))
            }
            _ => {
                return Err(self.fail(
                    pos,
                    format!("function '{name}' expects 1 argument, got {}", values.len()),
                ))
            }
        };
        let (found, kind) = if lower == "parameters" {
            (self.resolver.parameter(key), "parameter")
        } else {
            if self.ctx.in_parameter_default {
                return Err(self.fail(
                    pos,
                    "variables() cannot be used in a parameter defaultValue",
                ));
            }
            (self.resolver.variable(key), "variable")
        };
        let value = found.unwrap_or_else(|| {
            Err(self.fail(
                pos,
                format!("{kind} '{key}' is not declared in the template"),
            ))
        })?;
        // Each read hands out a copy, so it counts like a produced value.
        self.produced(value, pos, format_args!("function '{name}'"))
    }
}

#[cfg(test)]
mod tests {
    use crate::template::arm::test_support::{eval, eval_err, TestResolver};
    use serde_json::json;

    use super::*;

    #[test]
    fn literals_and_escapes() {
        assert_eq!(eval("plain"), json!("plain"));
        assert_eq!(eval("[[not an expression]"), json!("[not an expression]"));
        assert_eq!(eval("['it''s']"), json!("it's"));
        assert_eq!(eval("[-7]"), json!(-7));
        assert_eq!(eval("[true]"), json!(true));
        assert_eq!(eval("[ concat( 'a' ,\n 'b' ) ]"), json!("ab"));
    }

    #[test]
    fn function_names_ignore_case() {
        assert_eq!(eval("[CONCAT('a', ToLower('B'))]"), json!("ab"));
        assert_eq!(eval("[Parameters('Name')]"), json!("img"));
    }

    #[test]
    fn parameters_and_variables() {
        assert_eq!(eval("[parameters('name')]"), json!("img"));
        assert_eq!(eval("[variables('obj').inner.list[1]]"), json!("b"));
        assert_eq!(
            eval_err("[parameters('nope')]"),
            "expr: parameter 'nope' is not declared in the template (at position 2)"
        );
        assert_eq!(
            eval_err("[variables('nope')]"),
            "expr: variable 'nope' is not declared in the template (at position 2)"
        );
        assert_eq!(
            eval_err("[parameters(1)]"),
            "expr: function 'parameters' expects argument 1 to be a string, got int (at position 2)"
        );
        assert_eq!(
            eval_err("[variables()]"),
            "expr: function 'variables' expects 1 argument, got 0 (at position 2)"
        );
    }

    #[test]
    fn property_access() {
        assert_eq!(eval("[resourceGroup().location]"), json!("local"));
        assert_eq!(eval("[resourceGroup().LOCATION]"), json!("local"));
        assert_eq!(
            eval_err("[variables('obj').missing]"),
            "expr: property 'missing' does not exist; available properties are: inner (at position 18)"
        );
        assert_eq!(
            eval_err("[parameters('name').length]"),
            "expr: cannot read property 'length' of a value of type string (at position 20)"
        );
    }

    #[test]
    fn index_access() {
        assert_eq!(eval("[variables('obj')['inner']['list'][0]]"), json!("a"));
        assert_eq!(eval("[createArray(1, 2, 3)[2]]"), json!(3));
        assert_eq!(
            eval_err("[createArray(1)[1]]"),
            "expr: index 1 is out of range for an array of length 1 (at position 16)"
        );
        assert_eq!(
            eval_err("[createArray(1)[-1]]"),
            "expr: index -1 is out of range for an array of length 1 (at position 16)"
        );
        assert_eq!(
            eval_err("[createArray(1)['a']]"),
            "expr: cannot index a value of type array with string 'a' (at position 16)"
        );
    }

    #[test]
    fn if_only_evaluates_the_chosen_branch() {
        assert_eq!(eval("[if(true, 'yes', variables('nope'))]"), json!("yes"));
        assert_eq!(eval("[if(false, variables('nope'), 2)]"), json!(2));
        assert_eq!(
            eval_err("[if('x', 1, 2)]"),
            "expr: function 'if' expects argument 1 to be a bool, got string (at position 2)"
        );
        assert_eq!(
            eval_err("[if(true, 1)]"),
            "expr: function 'if' expects 3 arguments, got 2 (at position 2)"
        );
    }

    #[test]
    fn unsupported_functions_are_named() {
        assert_eq!(
            eval_err("[listKeys('x', '2020-01-01')]"),
            "expr: unsupported ARM template function 'listKeys' (at position 2)"
        );
        assert_eq!(
            eval_err("[concat('a', reference('x'))]"),
            "expr: unsupported ARM template function 'reference' (at position 14)"
        );
    }

    #[test]
    fn parse_errors_carry_position_and_hint() {
        assert_eq!(
            eval_err("[concat('a']"),
            "expr: invalid expression: unbalanced parentheses: '(' at position 8 is never closed (a literal string that starts with '[' and ends with ']' must be written with '[[')"
        );
        assert!(eval_err("[ -f /etc/x ]").contains("unexpected character '-' at position 3"));
    }

    #[test]
    fn variables_are_forbidden_in_parameter_defaults() {
        let r = TestResolver::default();
        let ctx = EvalContext {
            in_parameter_default: true,
            copy: None,
        };
        let err = evaluate_string("[variables('obj')]", "p", &r, ctx).unwrap_err();
        assert_eq!(
            err[0].message,
            "variables() cannot be used in a parameter defaultValue (at position 2)"
        );
    }

    #[test]
    fn tree_evaluates_keys_values_and_collects_all_errors() {
        let r = TestResolver::default();
        let doc = json!({
            "[concat('k', '1')]": "[parameters('name')]",
            "[[lit]": ["[add(1, 2)]", 4, null, {"x": "[toUpper('y')]"}]
        });
        let out = evaluate_tree(&doc, "root", &r, EvalContext::default()).unwrap();
        assert_eq!(out, json!({"k1": "img", "[lit]": [3, 4, null, {"x": "Y"}]}));

        let bad = json!({"a": ["[nope()]", "ok", "[add(1)]"], "[add(1, 1)]": 1});
        let errs = evaluate_tree(&bad, "root", &r, EvalContext::default()).unwrap_err();
        let mut shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        // Key order depends on serde_json's features; compare sorted.
        shown.sort();
        assert_eq!(
            shown,
            vec![
                "root.a[0]: unsupported ARM template function 'nope' (at position 2)",
                "root.a[2]: function 'add' expects 2 arguments, got 1 (at position 2)",
                "root['[add(1, 1)]']: an object key expression must produce a string, got int",
            ]
        );
    }

    #[test]
    fn duplicate_keys_after_evaluation_are_errors() {
        let r = TestResolver::default();
        let doc = json!({"a": 1, "[toLower('A')]": 2});
        let errs = evaluate_tree(&doc, "root", &r, EvalContext::default()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].message,
            "key 'a' appears more than once after evaluation"
        );
        // Whichever of the two keys comes second in map order is reported.
        assert!(["root.a", "root['[toLower(''A'')]']"].contains(&errs[0].path.as_str()));
    }
}
