//! Memoised, on-demand evaluation of named values (parameters and
//! variables) with cycle detection.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;

use super::error::{dedup, ArmError};
use super::limits::Budget;
use super::path;

enum Slot {
    InProgress,
    Done(Result<Value, Vec<ArmError>>),
}

/// A table of named values computed at most once each.
///
/// Names are case-insensitive, as ARM parameter and variable names are.
pub(crate) struct LazyTable {
    /// `parameters` or `variables`: the document section, used in paths.
    section: &'static str,
    slots: RefCell<HashMap<String, Slot>>,
    /// Names being computed, outermost first, to describe a cycle.
    stack: RefCell<Vec<String>>,
}

impl LazyTable {
    /// An empty table for the given document section.
    pub(crate) fn new(section: &'static str) -> Self {
        LazyTable {
            section,
            slots: RefCell::new(HashMap::new()),
            stack: RefCell::new(Vec::new()),
        }
    }

    /// Returns the value of `name`, computing it with `compute` the first
    /// time. Asking for a name while it is being computed is a cycle.
    ///
    /// Computing a value takes one level of `budget`'s nesting, since
    /// values computed from each other nest on the stack. Handing out a
    /// remembered failure counts its size against the budget (handing out
    /// a value is counted by the caller).
    pub(crate) fn get(
        &self,
        name: &str,
        budget: &Budget,
        compute: impl FnOnce() -> Result<Value, Vec<ArmError>>,
    ) -> Result<Value, Vec<ArmError>> {
        let key = name.to_ascii_lowercase();
        match self.slots.borrow().get(&key) {
            Some(Slot::Done(Ok(value))) => return Ok(value.clone()),
            Some(Slot::Done(Err(errors))) => {
                let size = errors
                    .iter()
                    .map(|e| e.path.len() + e.message.len())
                    .fold(0usize, usize::saturating_add);
                return match budget.charge(size) {
                    Ok(()) => Err(errors.clone()),
                    Err(m) => {
                        let error = ArmError::new(path::key(self.section, name), m);
                        budget.note(&error);
                        Err(vec![error])
                    }
                };
            }
            Some(Slot::InProgress) => return Err(vec![self.cycle_error(name)]),
            None => {}
        }
        let Some(_level) = budget.enter() else {
            return Err(vec![budget.too_deep(&path::key(self.section, name))]);
        };
        self.slots
            .borrow_mut()
            .insert(key.clone(), Slot::InProgress);
        self.stack.borrow_mut().push(name.to_string());
        // A value computed from the same failing name twice (`concat(v, v)`)
        // holds its errors twice; stored that way, a chain of such values
        // would double them at every step.
        let result = compute().map_err(dedup);
        self.stack.borrow_mut().pop();
        self.slots
            .borrow_mut()
            .insert(key, Slot::Done(result.clone()));
        result
    }

    fn cycle_error(&self, name: &str) -> ArmError {
        let stack = self.stack.borrow();
        let start = stack
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .unwrap_or(0);
        let mut cycle: Vec<&str> = stack[start..].iter().map(String::as_str).collect();
        cycle.push(name);
        let first = cycle.first().copied().unwrap_or(name);
        ArmError::new(
            path::key(self.section, first),
            format!(
                "circular reference between {}: {}",
                self.section,
                cycle.join(" -> ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::arm::limits::Limits;
    use serde_json::json;
    use std::cell::Cell;

    #[test]
    fn computes_once_and_ignores_case() {
        let b = Budget::default();
        let table = LazyTable::new("variables");
        let calls = Cell::new(0);
        let compute = || {
            calls.set(calls.get() + 1);
            Ok(json!(1))
        };
        assert_eq!(table.get("a", &b, compute).unwrap(), json!(1));
        assert_eq!(table.get("A", &b, || Ok(json!(2))).unwrap(), json!(1));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn failures_are_remembered() {
        let b = Budget::default();
        let table = LazyTable::new("variables");
        let err = vec![ArmError::new("variables.a", "bad")];
        assert_eq!(table.get("a", &b, || Err(err.clone())).unwrap_err(), err);
        assert_eq!(table.get("a", &b, || Ok(json!(1))).unwrap_err(), err);
    }

    #[test]
    fn failures_are_stored_once_each() {
        let b = Budget::default();
        let table = LazyTable::new("variables");
        let e = ArmError::new("variables.a", "bad");
        let got = table.get("b", &b, || Err(vec![e.clone(), e.clone()]));
        assert_eq!(got.unwrap_err(), vec![e]);
    }

    #[test]
    fn handing_out_failures_is_counted() {
        let b = Budget::new(Limits {
            max_total_bytes: 100,
            ..Limits::default()
        });
        let table = LazyTable::new("variables");
        let err = vec![ArmError::new("variables.a", "x".repeat(40))];
        assert_eq!(table.get("a", &b, || Err(err.clone())).unwrap_err(), err);
        assert_eq!(table.get("a", &b, || Ok(json!(1))).unwrap_err(), err);
        let third = table.get("a", &b, || Ok(json!(1))).unwrap_err();
        assert!(third[0]
            .message
            .starts_with("exceeded the evaluation budget"));
        assert!(b.exhausted().is_some());
    }

    #[test]
    fn resolving_through_each_other_takes_a_level_each() {
        let b = Budget::new(Limits {
            max_depth: 2,
            ..Limits::default()
        });
        let table = LazyTable::new("variables");
        let err = table
            .get("a", &b, || {
                table.get("b", &b, || table.get("c", &b, || Ok(json!(0))))
            })
            .unwrap_err();
        assert_eq!(
            err[0].to_string(),
            "variables.c: nested too deeply; at most 2 levels of expressions, template values, parameters and variables can be nested"
        );
    }

    #[test]
    fn self_reference_is_a_cycle() {
        let b = Budget::default();
        let table = LazyTable::new("variables");
        let err = table
            .get("a", &b, || table.get("a", &b, || Ok(json!(0))))
            .unwrap_err();
        assert_eq!(
            err[0].to_string(),
            "variables.a: circular reference between variables: a -> a"
        );
    }
}
