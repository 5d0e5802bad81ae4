//! Memoised, on-demand evaluation of named values (parameters and
//! variables) with cycle detection.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;

use super::error::ArmError;
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
    pub(crate) fn get(
        &self,
        name: &str,
        compute: impl FnOnce() -> Result<Value, Vec<ArmError>>,
    ) -> Result<Value, Vec<ArmError>> {
        let key = name.to_ascii_lowercase();
        match self.slots.borrow().get(&key) {
            Some(Slot::Done(result)) => return result.clone(),
            Some(Slot::InProgress) => return Err(vec![self.cycle_error(name)]),
            None => {}
        }
        self.slots
            .borrow_mut()
            .insert(key.clone(), Slot::InProgress);
        self.stack.borrow_mut().push(name.to_string());
        let result = compute();
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
    use serde_json::json;
    use std::cell::Cell;

    #[test]
    fn computes_once_and_ignores_case() {
        let table = LazyTable::new("variables");
        let calls = Cell::new(0);
        let compute = || {
            calls.set(calls.get() + 1);
            Ok(json!(1))
        };
        assert_eq!(table.get("a", compute).unwrap(), json!(1));
        assert_eq!(table.get("A", || Ok(json!(2))).unwrap(), json!(1));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn failures_are_remembered() {
        let table = LazyTable::new("variables");
        let err = vec![ArmError::new("variables.a", "bad")];
        assert_eq!(table.get("a", || Err(err.clone())).unwrap_err(), err);
        assert_eq!(table.get("a", || Ok(json!(1))).unwrap_err(), err);
    }

    #[test]
    fn self_reference_is_a_cycle() {
        let table = LazyTable::new("variables");
        let err = table
            .get("a", || table.get("a", || Ok(json!(0))))
            .unwrap_err();
        assert_eq!(
            err[0].to_string(),
            "variables.a: circular reference between variables: a -> a"
        );
    }
}
