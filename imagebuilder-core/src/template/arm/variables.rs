//! Variables: evaluated lazily, only when an expression uses them, with
//! cycle detection. The top-level `copy` form is supported for simple
//! loops (`name`, `count`, `input` using `copyIndex('name')`).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use serde_json::Value;

use super::error::ArmError;
use super::eval::{evaluate_tree, CopyIndex, EvalContext, Resolver};
use super::lazy::LazyTable;
use super::path;
use super::value::{describe, get_property, type_name};

enum Definition<'a> {
    /// `"name": value`.
    Plain(&'a Value),
    /// An entry of the top-level `copy` array, at `path`.
    Copy {
        count: &'a Value,
        input: &'a Value,
        path: String,
    },
}

struct Variable<'a> {
    name: &'a str,
    def: Definition<'a>,
}

/// The template's `variables` section.
pub(crate) struct Variables<'a> {
    vars: Vec<Variable<'a>>,
    /// Lower-cased name to index in `vars` (the first of duplicates).
    index: HashMap<String, usize>,
    table: LazyTable,
}

impl<'a> Variables<'a> {
    /// Reads the `variables` section; structural problems (a malformed
    /// `copy` entry, a section that is not an object) are errors up front.
    pub(crate) fn new(section: Option<&'a Value>) -> (Self, Vec<ArmError>) {
        let mut vars = Vec::new();
        let mut errors = Vec::new();
        match section {
            None => {}
            Some(Value::Object(map)) => {
                for (name, value) in map {
                    if name.eq_ignore_ascii_case("copy") {
                        read_copy_loops(value, &mut vars, &mut errors);
                    } else {
                        vars.push(Variable {
                            name,
                            def: Definition::Plain(value),
                        });
                    }
                }
            }
            Some(other) => errors.push(ArmError::new(
                "variables",
                format!("'variables' must be an object, got {}", type_name(other)),
            )),
        }
        let mut index = HashMap::with_capacity(vars.len());
        for (i, v) in vars.iter().enumerate() {
            match index.entry(v.name.to_ascii_lowercase()) {
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
                Entry::Occupied(_) => errors.push(ArmError::new(
                    path::key("variables", v.name),
                    format!("variable '{}' is defined more than once", v.name),
                )),
            }
        }
        let table = LazyTable::new("variables");
        (Variables { vars, index, table }, errors)
    }

    /// The value of a variable; `None` when it is not declared.
    pub(crate) fn get(
        &self,
        name: &str,
        resolver: &dyn Resolver,
    ) -> Option<Result<Value, Vec<ArmError>>> {
        let v = &self.vars[*self.index.get(&name.to_ascii_lowercase())?];
        Some(
            self.table
                .get(v.name, resolver.budget(), || compute(v, resolver)),
        )
    }
}

fn read_copy_loops<'a>(value: &'a Value, vars: &mut Vec<Variable<'a>>, errors: &mut Vec<ArmError>) {
    let Value::Array(entries) = value else {
        errors.push(ArmError::new(
            "variables.copy",
            format!(
                "'copy' must be an array of {{name, count, input}}, got {}",
                type_name(value)
            ),
        ));
        return;
    };
    for (i, entry) in entries.iter().enumerate() {
        let at = path::index("variables.copy", i);
        let fields = entry.as_object().map(|e| {
            (
                get_property(e, "name").and_then(Value::as_str),
                get_property(e, "count"),
                get_property(e, "input"),
            )
        });
        match fields {
            Some((Some(name), Some(count), Some(input))) => vars.push(Variable {
                name,
                def: Definition::Copy {
                    count,
                    input,
                    path: at,
                },
            }),
            _ => errors.push(ArmError::new(
                at,
                "a variables copy entry needs a string 'name', a 'count' and an 'input'",
            )),
        }
    }
}

fn compute(v: &Variable<'_>, resolver: &dyn Resolver) -> Result<Value, Vec<ArmError>> {
    let at = path::key("variables", v.name);
    match &v.def {
        Definition::Plain(value) => {
            // A `copy` key inside a variable's own value is a nested loop
            // form this evaluator does not implement; failing beats silently
            // returning the unexpanded loop definition.
            if let Some(Value::Array(_)) = value.get("copy") {
                return Err(vec![ArmError::new(
                    path::key(&at, "copy"),
                    "copy loops inside a variable's value are not supported; use the top-level variables 'copy' array",
                )]);
            }
            evaluate_tree(value, &at, resolver, EvalContext::default())
        }
        Definition::Copy { count, input, path } => {
            let count_at = path::key(path, "count");
            let count = evaluate_tree(count, &count_at, resolver, EvalContext::default())?;
            let max = resolver.budget().limits().max_copy_count;
            let n = match count.as_i64() {
                Some(n) if (0..=max).contains(&n) => n,
                _ => {
                    return Err(vec![ArmError::new(
                        count_at,
                        format!(
                            "copy count must be an int from 0 to {max}, got {}",
                            describe(&count)
                        ),
                    )])
                }
            };
            let input_at = path::key(path, "input");
            let mut items = Vec::new();
            for index in 0..n {
                let ctx = EvalContext {
                    in_parameter_default: false,
                    copy: Some(CopyIndex {
                        name: v.name,
                        index,
                    }),
                };
                let item = evaluate_tree(input, &input_at, resolver, ctx)?;
                // Each iteration copies `input` anew, literal parts included.
                resolver.budget().charge_value(&item).map_err(|m| {
                    let error = ArmError::new(&input_at, format!("copy loop '{}' {m}", v.name));
                    resolver.budget().note(&error);
                    vec![error]
                })?;
                items.push(item);
            }
            Ok(Value::Array(items))
        }
    }
}
