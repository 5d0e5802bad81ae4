//! The budgets that keep a hostile template from exhausting the stack,
//! memory or time of the process evaluating it.
//!
//! Every limit lives in [`Limits`]; one [`Budget`] per deployment
//! evaluation carries them together with the running counters, and is
//! handed to the parser, the evaluator, the lazy parameter and variable
//! tables and the built-in functions.

use std::cell::{Cell, RefCell};

use serde_json::Value;

use super::error::ArmError;

/// The limits of one deployment evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Nesting levels, counted together: a call or a `.name` / `[index]`
    /// accessor inside another, an array or object inside a template value,
    /// and a parameter or variable resolved while resolving another (which
    /// takes three levels: the `variables()` call, the variable, its value).
    ///
    /// Chosen so the deepest evaluation fits a 2 MiB thread stack (tokio's
    /// worker default; the main thread has 8 MiB) in a debug build with
    /// room to spare. Measured there, a level costs at most about 4.2 KiB
    /// (nested calls and chains of variables cost the same per level), so
    /// 200 levels take about 850 KiB, leaving over 1 MiB for the caller and
    /// for work done at the deepest point, such as printing a value nested
    /// [`max_value_depth`](Limits::max_value_depth) deep. The
    /// `the_deepest_allowed_evaluation_fits_a_small_stack` test in
    /// `tests/arm_hostile.rs` checks this. Real templates nest expressions a
    /// handful of levels and variables a few more; 200 allows, say, a chain
    /// of 30 variables each nesting three calls.
    pub(crate) max_depth: usize,
    /// Longest string, in bytes, one step may produce. 1 MiB is far more
    /// than any script or name in an image template, and `padLeft`'s
    /// length is bounded by it too.
    pub(crate) max_string_bytes: usize,
    /// Most items one array or object produced by one step may hold. ARM
    /// itself caps `range` at 10 000 and copy loops at 800; ten times
    /// the former leaves room for `concat` and `union` of such arrays.
    pub(crate) max_items: usize,
    /// Deepest nesting of arrays and objects in a produced value, the same
    /// as serde_json's limit when reading a document. Deeper values would
    /// overflow the stack when cloned, compared, printed or dropped.
    pub(crate) max_value_depth: usize,
    /// Bytes of values (string bytes plus [`NODE_BYTES`] per array item,
    /// object member or scalar) all steps of one evaluation may produce
    /// together, including copies handed out by `parameters()` and
    /// `variables()`. Bounds memory and time: 64 MiB is produced in well
    /// under a second, yet is thousands of times what a real template needs.
    pub(crate) max_total_bytes: usize,
    /// ARM's own limit on `range` counts.
    pub(crate) max_range_count: i64,
    /// ARM's own limit on copy loop iterations.
    pub(crate) max_copy_count: i64,
}

/// What one JSON node (array item, object member, scalar) counts for in
/// [`Limits::max_total_bytes`]: the size of a `serde_json::Value`.
pub(crate) const NODE_BYTES: usize = 32;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 200,
            max_string_bytes: 1 << 20,
            max_items: 100_000,
            max_value_depth: 128,
            max_total_bytes: 64 << 20,
            max_range_count: 10_000,
            max_copy_count: 800,
        }
    }
}

/// The limits and running counters of one evaluation.
///
/// Evaluation is single-threaded, so the counters are plain cells.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    limits: Limits,
    /// Levels currently entered (see [`Limits::max_depth`]).
    depth: Cell<usize>,
    /// Bytes produced so far (see [`Limits::max_total_bytes`]).
    spent: Cell<usize>,
    /// Set once `spent` passes the limit: every later evaluation returns
    /// this same error, so the work stops and the report shows it once.
    exhausted: RefCell<Option<ArmError>>,
}

/// One nesting level held; leaving the scope gives it back.
#[must_use]
pub(crate) struct DepthGuard<'b>(&'b Budget);

impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        self.0.depth.set(self.0.depth.get() - 1);
    }
}

/// What [`Budget::measure`] finds in a value.
struct Measure {
    /// Size counted against the total.
    bytes: usize,
    /// Items of the largest array or object.
    items: usize,
    /// Bytes of the longest string.
    string_bytes: usize,
}

impl Budget {
    /// A budget with the given limits and nothing spent.
    pub(crate) fn new(limits: Limits) -> Self {
        Budget {
            limits,
            ..Budget::default()
        }
    }

    /// The limits this budget enforces.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Enters one nesting level; `None` when that would go past the limit.
    pub(crate) fn enter(&self) -> Option<DepthGuard<'_>> {
        let depth = self.depth.get();
        if depth >= self.limits.max_depth {
            return None;
        }
        self.depth.set(depth + 1);
        Some(DepthGuard(self))
    }

    /// Levels that may still be entered below the current one.
    pub(crate) fn room(&self) -> usize {
        self.limits.max_depth.saturating_sub(self.depth.get())
    }

    /// The error for going past [`Limits::max_depth`], at `at`.
    pub(crate) fn too_deep(&self, at: &str) -> ArmError {
        ArmError::new(
            at,
            format!(
                "nested too deeply; at most {} levels of expressions, template values, parameters and variables can be nested",
                self.limits.max_depth
            ),
        )
    }

    /// The error every evaluation returns once the total is spent.
    pub(crate) fn exhausted(&self) -> Option<ArmError> {
        if !self.is_exhausted() {
            return None;
        }
        self.exhausted.borrow().clone()
    }

    /// Counts `bytes` of work (an estimate, for steps whose cost is not
    /// the size of what they produce) against the total.
    pub(crate) fn charge(&self, bytes: usize) -> Result<(), String> {
        let spent = self.spent.get().saturating_add(bytes);
        self.spent.set(spent);
        if spent > self.limits.max_total_bytes {
            let max = self.limits.max_total_bytes;
            let max = if max.is_multiple_of(1 << 20) {
                format!("{} MiB", max >> 20)
            } else {
                format!("{max} bytes")
            };
            return Err(format!(
                "exceeded the evaluation budget: a deployment's expressions may produce at most {max} of values in total"
            ));
        }
        Ok(())
    }

    /// Called with every error as it is made: the first one made after the
    /// total was exceeded is that excess, and is kept so that later
    /// evaluations stop at once with it.
    pub(crate) fn note(&self, error: &ArmError) {
        if self.is_exhausted() {
            let mut slot = self.exhausted.borrow_mut();
            if slot.is_none() {
                *slot = Some(error.clone());
            }
        }
    }

    /// True once the total has been exceeded.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.spent.get() > self.limits.max_total_bytes
    }

    /// Checks a value one step produced against the per-value limits and
    /// counts its size against the total. The message describes the limit
    /// broken, for the caller to prefix with the step's name.
    pub(crate) fn charge_value(&self, v: &Value) -> Result<(), String> {
        let m = self.measure(v, 0)?;
        let l = &self.limits;
        if m.string_bytes > l.max_string_bytes {
            return Err(format!(
                "produced a string of {} bytes; at most {} bytes are allowed",
                m.string_bytes, l.max_string_bytes
            ));
        }
        if m.items > l.max_items {
            return Err(format!(
                "produced an array or object of {} items; at most {} are allowed",
                m.items, l.max_items
            ));
        }
        self.charge(m.bytes)
    }

    /// Checks that `len` bytes of text may be produced, before building it.
    pub(crate) fn check_string_len(&self, len: usize) -> Result<(), String> {
        if len > self.limits.max_string_bytes {
            return Err(format!(
                "would produce a string of {len} bytes; at most {} bytes are allowed",
                self.limits.max_string_bytes
            ));
        }
        Ok(())
    }

    /// Checks that `len` items may be produced, before building them.
    pub(crate) fn check_items(&self, len: usize) -> Result<(), String> {
        if len > self.limits.max_items {
            return Err(format!(
                "would produce {len} items; at most {} are allowed",
                self.limits.max_items
            ));
        }
        Ok(())
    }

    /// Walks `v`, which sits inside `depth` arrays or objects, stopping as
    /// soon as it is nested too deeply so the walk itself cannot overflow
    /// the stack.
    fn measure(&self, v: &Value, depth: usize) -> Result<Measure, String> {
        if (v.is_array() || v.is_object()) && depth >= self.limits.max_value_depth {
            return Err(format!(
                "produced a value with arrays or objects nested more than {} levels deep",
                self.limits.max_value_depth
            ));
        }
        let mut m = Measure {
            bytes: NODE_BYTES,
            items: 0,
            string_bytes: 0,
        };
        let mut add = |child: Measure, key_len: usize| {
            m.bytes = m.bytes.saturating_add(child.bytes).saturating_add(key_len);
            m.items = m.items.max(child.items);
            m.string_bytes = m.string_bytes.max(child.string_bytes);
        };
        match v {
            Value::String(s) => {
                m.bytes += s.len();
                m.string_bytes = s.len();
            }
            Value::Array(items) => {
                for item in items {
                    add(self.measure(item, depth + 1)?, 0);
                }
                m.items = m.items.max(items.len());
            }
            Value::Object(map) => {
                for (k, item) in map {
                    add(self.measure(item, depth + 1)?, k.len());
                }
                m.items = m.items.max(map.len());
            }
            _ => {}
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn small() -> Budget {
        Budget::new(Limits {
            max_depth: 2,
            max_string_bytes: 4,
            max_items: 2,
            max_value_depth: 2,
            max_total_bytes: 200,
            ..Limits::default()
        })
    }

    #[test]
    fn depth_is_given_back_when_a_level_is_left() {
        let b = small();
        let first = b.enter().unwrap();
        let second = b.enter().unwrap();
        assert!(b.enter().is_none());
        assert_eq!(b.room(), 0);
        drop(second);
        assert_eq!(b.room(), 1);
        drop(first);
        assert_eq!(b.room(), 2);
        assert_eq!(
            b.too_deep("x").to_string(),
            "x: nested too deeply; at most 2 levels of expressions, template values, parameters and variables can be nested"
        );
    }

    #[test]
    fn per_value_limits() {
        let b = small();
        assert!(b.charge_value(&json!([["abcd"], {"k": 1}])).is_ok());
        assert_eq!(
            b.charge_value(&json!("abcde")).unwrap_err(),
            "produced a string of 5 bytes; at most 4 bytes are allowed"
        );
        assert_eq!(
            b.charge_value(&json!([1, 2, 3])).unwrap_err(),
            "produced an array or object of 3 items; at most 2 are allowed"
        );
        assert_eq!(
            b.charge_value(&json!([[[1]]])).unwrap_err(),
            "produced a value with arrays or objects nested more than 2 levels deep"
        );
    }

    #[test]
    fn the_total_is_shared_by_every_step() {
        let b = small();
        // 32 for the array, 2 x (32 + 4) for the strings: 104 of 200.
        b.charge_value(&json!(["abcd", "abcd"])).unwrap();
        assert!(!b.is_exhausted());
        assert!(b
            .charge_value(&json!(["abcd", "abcd"]))
            .unwrap_err()
            .starts_with("exceeded the evaluation budget"));
        assert!(b.is_exhausted());
    }
}
