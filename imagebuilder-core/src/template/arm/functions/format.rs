//! `format(formatString, arg1, ...)`: .NET composite formatting.
//!
//! Supported: `{index}`, `{index,alignment}`, `{index:spec}`, `{{` and
//! `}}`. Int specifiers `D`n, `X`n/`x`n, `N`n, `F`n, `G` and zero patterns
//! such as `000`; strings ignore the specifier as .NET does.

use serde_json::Value;

use super::{Args, CallContext};
use crate::template::arm::value::to_text;

/// `format(formatString, arg1, arg2, ...)`.
///
/// One argument may be formatted many times, so each item is checked
/// against the room left for the result before it is added.
pub(crate) fn format(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.at_least(1)?;
    let max = c.budget.limits().max_string_bytes;
    let fmt = a.string(0)?;
    let values = &a.values[1..];
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' if chars.get(i + 1) == Some(&'{') => {
                out.push('{');
                i += 2;
            }
            '}' if chars.get(i + 1) == Some(&'}') => {
                out.push('}');
                i += 2;
            }
            '}' => {
                return Err(a.error(format!(
                    "has an unmatched '}}' at index {i} of the format string"
                )))
            }
            '{' => {
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == '}')
                    .map(|p| p + i)
                    .ok_or_else(|| {
                        a.error(format!(
                            "has an unclosed '{{' at index {i} of the format string"
                        ))
                    })?;
                let item: String = chars[i + 1..close].iter().collect();
                let text = format_item(a, &item, values)?;
                if out.len().saturating_add(text.len()) > max {
                    return Err(a.error(format!(
                        "would produce a string longer than the {max} bytes allowed"
                    )));
                }
                out.push_str(&text);
                i = close + 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(Value::String(out))
}

/// Formats one `index[,alignment][:spec]` item.
fn format_item(a: &Args<'_>, item: &str, values: &[Value]) -> Result<String, String> {
    let (head, spec) = match item.split_once(':') {
        Some((h, s)) => (h, Some(s)),
        None => (item, None),
    };
    let (index, align) = match head.split_once(',') {
        Some((i, al)) => (i, Some(al)),
        None => (head, None),
    };
    let bad = || a.error(format!("has an invalid format item '{{{item}}}'"));
    let index: usize = index.trim().parse().map_err(|_| bad())?;
    let align: i64 = match align {
        Some(al) => al.trim().parse().map_err(|_| bad())?,
        None => 0,
    };
    let value = values.get(index).ok_or_else(|| {
        a.error(format!(
            "format item {{{index}}} needs at least {} value(s) after the format string, got {}",
            index.saturating_add(1),
            values.len()
        ))
    })?;
    let text = match (value.as_i64(), spec) {
        (Some(n), Some(spec)) if !spec.is_empty() => format_int(a, n, spec)?,
        _ => to_text(value),
    };
    // .NET rejects alignments of a million or more.
    if align.unsigned_abs() >= MAX_ALIGNMENT {
        return Err(a.error(format!(
            "has an alignment of {align} in '{{{item}}}'; it must be less than {MAX_ALIGNMENT} either way"
        )));
    }
    let width = usize::try_from(align.unsigned_abs()).unwrap_or(usize::MAX);
    let missing = width.saturating_sub(text.chars().count());
    let pad = " ".repeat(missing);
    Ok(if align < 0 {
        format!("{text}{pad}")
    } else {
        format!("{pad}{text}")
    })
}

/// .NET's bound on the alignment of a format item.
const MAX_ALIGNMENT: u64 = 1_000_000;

/// Applies a numeric format specifier to an int.
fn format_int(a: &Args<'_>, n: i64, spec: &str) -> Result<String, String> {
    if spec.chars().all(|c| c == '0') {
        return Ok(zero_pad(n, spec.len()));
    }
    let mut chars = spec.chars();
    let kind = chars.next().unwrap_or('G');
    let digits = chars.as_str();
    let precision: Option<usize> = if digits.is_empty() {
        None
    } else {
        match digits.parse::<usize>() {
            Ok(p) if p <= 99 => Some(p),
            _ => return Err(a.error(format!("format specifier '{spec}' is not supported"))),
        }
    };
    let text = match kind {
        'D' | 'd' => zero_pad(n, precision.unwrap_or(0)),
        'X' => format!("{:0width$X}", n as u64, width = precision.unwrap_or(0)),
        'x' => format!("{:0width$x}", n as u64, width = precision.unwrap_or(0)),
        'N' | 'n' => with_decimals(&group_thousands(n), precision.unwrap_or(2)),
        'F' | 'f' => with_decimals(&n.to_string(), precision.unwrap_or(2)),
        'G' | 'g' if precision.is_none() => n.to_string(),
        _ => return Err(a.error(format!("format specifier '{spec}' is not supported"))),
    };
    Ok(text)
}

/// `n` with at least `width` digits. The zeros are added by hand: std's
/// `{:0width$}` panics for widths over 65 535, and a pattern of zeros in
/// a format string can be longer.
fn zero_pad(n: i64, width: usize) -> String {
    let digits = n.unsigned_abs().to_string();
    let zeros = "0".repeat(width.saturating_sub(digits.len()));
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{zeros}{digits}")
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn with_decimals(int_text: &str, decimals: usize) -> String {
    if decimals == 0 {
        int_text.to_string()
    } else {
        format!("{int_text}.{}", "0".repeat(decimals))
    }
}

#[cfg(test)]
mod tests {
    use crate::template::arm::test_support::{eval, eval_err};
    use serde_json::json;

    #[test]
    fn positional_arguments() {
        assert_eq!(
            eval("[format('{0}, {1}. Formatted number: {2:N0}', 'Hello', 'User', 8175133)]"),
            json!("Hello, User. Formatted number: 8,175,133")
        );
        assert_eq!(eval("[format('{1}{0}{1}', 'a', 'b')]"), json!("bab"));
        assert_eq!(eval("[format('{0} {1}', true, null())]"), json!("True "));
        assert_eq!(eval("[format('no items')]"), json!("no items"));
    }

    #[test]
    fn escaped_braces() {
        assert_eq!(eval("[format('{{{0}}}', 'x')]"), json!("{x}"));
        assert_eq!(eval("[format('}}{{')]"), json!("}{"));
    }

    #[test]
    fn int_specifiers_and_alignment() {
        assert_eq!(eval("[format('{0:D3}', 7)]"), json!("007"));
        assert_eq!(eval("[format('{0:D3}', -7)]"), json!("-007"));
        assert_eq!(eval("[format('{0:000}', 42)]"), json!("042"));
        assert_eq!(eval("[format('{0:X}', 255)]"), json!("FF"));
        assert_eq!(eval("[format('{0:x4}', 255)]"), json!("00ff"));
        assert_eq!(eval("[format('{0:N}', 1234)]"), json!("1,234.00"));
        assert_eq!(eval("[format('{0:N0}', -1234567)]"), json!("-1,234,567"));
        assert_eq!(eval("[format('{0:F1}', 3)]"), json!("3.0"));
        assert_eq!(eval("[format('[{0,4}]', 'ab')]"), json!("[  ab]"));
        assert_eq!(eval("[format('[{0,-4}]', 'ab')]"), json!("[ab  ]"));
        assert_eq!(eval("[format('{0:D3}', 'text')]"), json!("text"));
    }

    #[test]
    fn long_zero_patterns_and_huge_indexes_do_not_panic() {
        let zeros = "0".repeat(70_000);
        let text = eval(&format!("[format('{{0:{zeros}}}', 12)]"));
        let text = text.as_str().unwrap();
        assert_eq!(text.len(), 70_000);
        assert!(text.ends_with("00012"));
        assert_eq!(eval("[format('{0:00000}', -12)]"), json!("-00012"));
        assert_eq!(
            eval_err("[format('{18446744073709551615}', 1)]"),
            "expr: function 'format' format item {18446744073709551615} needs at least 18446744073709551615 value(s) after the format string, got 1 (at position 2)"
        );
    }

    #[test]
    fn repeated_items_cannot_grow_past_the_limit() {
        let items = "{0}".repeat(3);
        let e = eval_err(&format!("[format('{items}', padLeft('', 500000, 'a'))]"));
        assert!(
            e.contains(
                "function 'format' would produce a string longer than the 1048576 bytes allowed"
            ),
            "{e}"
        );
        let items = "{0,999999}".repeat(3);
        let e = eval_err(&format!("[format('{items}', 'a')]"));
        assert!(e.contains("longer than the 1048576 bytes allowed"), "{e}");
        assert_eq!(
            eval_err("[format('{0,-1000000}', 'a')]"),
            "expr: function 'format' has an alignment of -1000000 in '{0,-1000000}'; it must be less than 1000000 either way (at position 2)"
        );
    }

    #[test]
    fn format_errors() {
        assert_eq!(
            eval_err("[format('{1}', 'a')]"),
            "expr: function 'format' format item {1} needs at least 2 value(s) after the format string, got 1 (at position 2)"
        );
        assert_eq!(
            eval_err("[format('{0', 'a')]"),
            "expr: function 'format' has an unclosed '{' at index 0 of the format string (at position 2)"
        );
        assert_eq!(
            eval_err("[format('a}b')]"),
            "expr: function 'format' has an unmatched '}' at index 1 of the format string (at position 2)"
        );
        assert_eq!(
            eval_err("[format('{x}', 'a')]"),
            "expr: function 'format' has an invalid format item '{x}' (at position 2)"
        );
        assert_eq!(
            eval_err("[format('{0:E2}', 1)]"),
            "expr: function 'format' format specifier 'E2' is not supported (at position 2)"
        );
        assert_eq!(
            eval_err("[format(1)]"),
            "expr: function 'format' expects argument 1 to be a string, got int (at position 2)"
        );
    }
}
