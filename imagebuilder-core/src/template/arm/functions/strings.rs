//! String functions: concat, toLower, toUpper, replace, split, substring,
//! trim, startsWith, endsWith, padLeft, base64, base64ToString.

use serde_json::Value;

use super::{Args, CallContext};
use crate::template::arm::value::to_text;

/// `concat(arg1, ...)`: joins arrays if every argument is an array,
/// otherwise joins the text of strings, ints and bools.
pub(crate) fn concat(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.at_least(1)?;
    if a.values.iter().all(Value::is_array) {
        let len = a
            .values
            .iter()
            .filter_map(Value::as_array)
            .map(Vec::len)
            .fold(0usize, usize::saturating_add);
        c.budget.check_items(len).map_err(|m| a.error(m))?;
        let joined = a
            .values
            .iter()
            .filter_map(Value::as_array)
            .flatten()
            .cloned()
            .collect();
        return Ok(Value::Array(joined));
    }
    let len = a
        .values
        .iter()
        // An int prints as at most 20 characters, a bool as 5.
        .map(|v| v.as_str().map_or(20, str::len))
        .fold(0usize, usize::saturating_add);
    c.budget.check_string_len(len).map_err(|m| a.error(m))?;
    let mut out = String::new();
    for (i, v) in a.values.iter().enumerate() {
        match v {
            Value::Array(_) => {
                return Err(a.error(format!(
                    "cannot mix arrays with other values (argument {} is an array)",
                    i + 1
                )))
            }
            Value::Object(_) => {
                return Err(a.error(format!(
                    "expects strings or arrays, but argument {} is an object",
                    i + 1
                )))
            }
            other => out.push_str(&to_text(other)),
        }
    }
    Ok(Value::String(out))
}

/// `toLower(string)`.
pub(crate) fn to_lower(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    Ok(Value::String(a.string(0)?.to_lowercase()))
}

/// `toUpper(string)`.
pub(crate) fn to_upper(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    Ok(Value::String(a.string(0)?.to_uppercase()))
}

/// `replace(originalString, oldString, newString)`: replaces every match.
///
/// The result's length is worked out first, since it can be many times
/// the input's.
pub(crate) fn replace(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(3)?;
    let (s, old, new) = (a.string(0)?, a.string(1)?, a.string(2)?);
    if old.is_empty() {
        return Err(a.error("expects argument 2 to be a non-empty string"));
    }
    if new.len() > old.len() {
        let matches = s.matches(old).count();
        let len = (new.len() - old.len())
            .checked_mul(matches)
            .and_then(|grown| grown.checked_add(s.len()))
            .unwrap_or(usize::MAX);
        c.budget.check_string_len(len).map_err(|m| a.error(m))?;
    }
    Ok(Value::String(s.replace(old, new)))
}

/// `split(inputString, delimiter)`: `delimiter` is a string or an array of
/// strings; at each position the first delimiter in the list that matches
/// wins, as in .NET's `String.Split`.
pub(crate) fn split(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(2)?;
    let input = a.string(0)?;
    let delimiters: Vec<&str> = match a.get(1) {
        Value::String(d) => vec![d.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|d| {
                d.as_str()
                    .ok_or_else(|| a.error("expects argument 2 to hold only strings"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(a.type_error(1, "a string or an array of strings")),
    };
    let delimiters: Vec<&str> = delimiters.into_iter().filter(|d| !d.is_empty()).collect();
    // Every position is compared with every delimiter: count that work.
    let delimiter_bytes = delimiters
        .iter()
        .map(|d| d.len())
        .fold(0usize, usize::saturating_add);
    c.budget
        .charge(input.len().saturating_mul(delimiter_bytes))
        .map_err(|m| a.error(m))?;
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < input.len() {
        if let Some(d) = delimiters.iter().find(|d| input[i..].starts_with(**d)) {
            c.budget
                .check_items(parts.len() + 2)
                .map_err(|m| a.error(m))?;
            parts.push(Value::String(input[start..i].to_string()));
            i += d.len();
            start = i;
        } else {
            i += input[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    parts.push(Value::String(input[start..].to_string()));
    Ok(Value::Array(parts))
}

/// `substring(stringToParse, startIndex, [length])`, counting characters.
pub(crate) fn substring(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.between(2, 3)?;
    let chars: Vec<char> = a.string(0)?.chars().collect();
    let start = a.int(1)?;
    let len = chars.len() as i64;
    if start < 0 || start > len {
        return Err(a.error(format!(
            "start index {start} is out of range for a string of length {len}"
        )));
    }
    let take = if a.len() == 3 { a.int(2)? } else { len - start };
    // `start` is within 0..=len, so `len - start` cannot overflow.
    if take < 0 || take > len - start {
        return Err(a.error(format!(
            "length {take} from index {start} goes past the end of a string of length {len}"
        )));
    }
    let (from, to) = (start as usize, (start + take) as usize);
    Ok(Value::String(chars[from..to].iter().collect()))
}

/// `trim(stringToTrim)`: removes leading and trailing whitespace.
pub(crate) fn trim(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    Ok(Value::String(a.string(0)?.trim().to_string()))
}

/// `startsWith(stringToSearch, stringToFind)`, case-insensitive as in ARM.
pub(crate) fn starts_with(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(2)?;
    let (s, p) = (a.string(0)?.to_lowercase(), a.string(1)?.to_lowercase());
    Ok(Value::Bool(s.starts_with(&p)))
}

/// `endsWith(stringToSearch, stringToFind)`, case-insensitive as in ARM.
pub(crate) fn ends_with(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(2)?;
    let (s, p) = (a.string(0)?.to_lowercase(), a.string(1)?.to_lowercase());
    Ok(Value::Bool(s.ends_with(&p)))
}

/// `padLeft(valueToPad, totalLength, [paddingCharacter])`.
///
/// `totalLength` is at most the longest string a step may produce, so a
/// typo cannot exhaust memory.
pub(crate) fn pad_left(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.between(2, 3)?;
    let value = match a.get(0) {
        v @ (Value::String(_) | Value::Number(_)) => to_text(v),
        _ => return Err(a.type_error(0, "a string or an int")),
    };
    let total = a.int(1)?;
    let max = c.budget.limits().max_string_bytes;
    if usize::try_from(total).map_or(true, |t| t > max) {
        return Err(a.error(format!("totalLength {total} is out of range 0..={max}")));
    }
    let pad = if a.len() == 3 {
        let p = a.string(2)?;
        let mut chars = p.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => c,
            _ => return Err(a.error("expects argument 3 to be a single character")),
        }
    } else {
        ' '
    };
    let missing = (total as usize).saturating_sub(value.chars().count());
    c.budget
        .check_string_len(
            value
                .len()
                .saturating_add(missing.saturating_mul(pad.len_utf8())),
        )
        .map_err(|m| a.error(m))?;
    let mut out: String = std::iter::repeat_n(pad, missing).collect();
    out.push_str(&value);
    Ok(Value::String(out))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `base64(inputString)`: standard alphabet with padding, of the UTF-8 bytes.
pub(crate) fn base64(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    let bytes = a.string(0)?.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    Ok(Value::String(out))
}

/// `base64ToString(base64Value)`: decodes to UTF-8 text.
pub(crate) fn base64_to_string(a: &Args<'_>, _: &CallContext<'_>) -> Result<Value, String> {
    a.exactly(1)?;
    let text = a.string(0)?.trim_end_matches('=');
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut bytes = Vec::new();
    for c in text.bytes() {
        let Some(v) = B64.iter().position(|&b| b == c) else {
            return Err(a.error(format!("got invalid base64 character '{}'", c as char)));
        };
        bits = (bits << 6) | v as u32;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| a.error("decoded bytes are not valid UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use crate::template::arm::test_support::{eval, eval_err};
    use serde_json::json;

    #[test]
    fn concat_strings_ints_bools_and_arrays() {
        assert_eq!(eval("[concat('a', 'b', 'c')]"), json!("abc"));
        assert_eq!(eval("[concat('disk', 1, true)]"), json!("disk1True"));
        assert_eq!(eval("[concat('a', null())]"), json!("a"));
        assert_eq!(
            eval("[concat(createArray(1, 2), createArray('x'))]"),
            json!([1, 2, "x"])
        );
        assert_eq!(
            eval_err("[concat('a', createArray(1))]"),
            "expr: function 'concat' cannot mix arrays with other values (argument 2 is an array) (at position 2)"
        );
        assert_eq!(
            eval_err("[concat(createObject('a', 1))]"),
            "expr: function 'concat' expects strings or arrays, but argument 1 is an object (at position 2)"
        );
        assert_eq!(
            eval_err("[concat()]"),
            "expr: function 'concat' expects at least 1 argument, got 0 (at position 2)"
        );
    }

    #[test]
    fn case_conversion() {
        assert_eq!(eval("[toLower('AbC')]"), json!("abc"));
        assert_eq!(eval("[toUpper('AbC')]"), json!("ABC"));
        assert_eq!(
            eval_err("[toLower(1)]"),
            "expr: function 'toLower' expects argument 1 to be a string, got int (at position 2)"
        );
        assert_eq!(
            eval_err("[toUpper('a', 'b')]"),
            "expr: function 'toUpper' expects 1 argument, got 2 (at position 2)"
        );
    }

    #[test]
    fn replace_all_occurrences() {
        assert_eq!(eval("[replace('a-b-c', '-', '')]"), json!("abc"));
        assert_eq!(
            eval_err("[replace('a', '', 'x')]"),
            "expr: function 'replace' expects argument 2 to be a non-empty string (at position 2)"
        );
    }

    #[test]
    fn split_on_string_or_array() {
        assert_eq!(eval("[split('a,b,,c', ',')]"), json!(["a", "b", "", "c"]));
        assert_eq!(
            eval("[split('a;b,c', createArray(',', ';'))]"),
            json!(["a", "b", "c"])
        );
        assert_eq!(eval("[split('abc', '')]"), json!(["abc"]));
        assert_eq!(eval("[split('ü-ö', '-')]"), json!(["ü", "ö"]));
        assert_eq!(
            eval_err("[split('a', 1)]"),
            "expr: function 'split' expects argument 2 to be a string or an array of strings, got int (at position 2)"
        );
    }

    #[test]
    fn substring_bounds() {
        assert_eq!(eval("[substring('hello', 1, 3)]"), json!("ell"));
        assert_eq!(eval("[substring('hello', 2)]"), json!("llo"));
        assert_eq!(eval("[substring('hello', 5)]"), json!(""));
        assert_eq!(
            eval_err("[substring('abc', 4)]"),
            "expr: function 'substring' start index 4 is out of range for a string of length 3 (at position 2)"
        );
        assert_eq!(
            eval_err("[substring('abc', 1, 3)]"),
            "expr: function 'substring' length 3 from index 1 goes past the end of a string of length 3 (at position 2)"
        );
        // start + length would overflow an i64.
        assert_eq!(
            eval_err("[substring('abc', 1, 9223372036854775807)]"),
            "expr: function 'substring' length 9223372036854775807 from index 1 goes past the end of a string of length 3 (at position 2)"
        );
    }

    #[test]
    fn replace_refuses_results_over_the_limit_before_building_them() {
        let e = eval_err("[replace(padLeft('', 1048576, 'a'), 'a', padLeft('', 1048576, 'b'))]");
        assert!(
            e.contains("function 'replace' would produce a string of 1099511627776 bytes; at most 1048576 bytes are allowed"),
            "{e}"
        );
        assert_eq!(eval("[replace('aXa', 'a', 'bc')]"), json!("bcXbc"));
    }

    #[test]
    fn concat_and_pad_left_refuse_oversized_results() {
        let e = eval_err("[concat(padLeft('', 1048576, 'a'), 'b')]");
        assert!(
            e.contains("function 'concat' would produce a string of 1048577 bytes"),
            "{e}"
        );
        let e = eval_err("[padLeft('', 1048577)]");
        assert!(
            e.contains("function 'padLeft' totalLength 1048577 is out of range 0..=1048576"),
            "{e}"
        );
        let e = eval_err("[padLeft('', 1048576, 'é')]");
        assert!(e.contains("would produce a string of 2097152 bytes"), "{e}");
        let e = eval_err("[concat(range(0, 10000), range(0, 10000), range(0, 10000), range(0, 10000), range(0, 10000), range(0, 10000), range(0, 10000), range(0, 10000), range(0, 10000), range(0, 10000), range(0, 10000))]");
        assert!(
            e.contains("function 'concat' would produce 110000 items; at most 100000 are allowed"),
            "{e}"
        );
    }

    #[test]
    fn split_counts_its_comparisons() {
        assert_eq!(eval("[split('a,b', ',')]"), json!(["a", "b"]));
        let e = eval_err("[split(padLeft('', 1000000, 'a'), padLeft('', 1000000, 'b'))]");
        assert!(
            e.contains("function 'split' exceeded the evaluation budget"),
            "{e}"
        );
        let e = eval_err("[split(padLeft('', 200000, ','), ',')]");
        assert!(
            e.contains("function 'split' would produce 100001 items; at most 100000 are allowed"),
            "{e}"
        );
    }

    #[test]
    fn trim_starts_ends() {
        assert_eq!(eval("[trim('  a b \n')]"), json!("a b"));
        assert_eq!(eval("[startsWith('Microsoft', 'micro')]"), json!(true));
        assert_eq!(eval("[startsWith('Microsoft', 'soft')]"), json!(false));
        assert_eq!(eval("[endsWith('Microsoft', 'SOFT')]"), json!(true));
        assert_eq!(eval("[endsWith('Microsoft', 'micro')]"), json!(false));
    }

    #[test]
    fn pad_left_pads() {
        assert_eq!(eval("[padLeft('7', 3, '0')]"), json!("007"));
        assert_eq!(eval("[padLeft(42, 4)]"), json!("  42"));
        assert_eq!(eval("[padLeft('long', 2)]"), json!("long"));
        assert_eq!(
            eval_err("[padLeft('a', 3, 'xy')]"),
            "expr: function 'padLeft' expects argument 3 to be a single character (at position 2)"
        );
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(
            eval("[base64('one, two, three')]"),
            json!("b25lLCB0d28sIHRocmVl")
        );
        assert_eq!(eval("[base64('a')]"), json!("YQ=="));
        assert_eq!(eval("[base64('ab')]"), json!("YWI="));
        assert_eq!(eval("[base64('')]"), json!(""));
        assert_eq!(
            eval("[base64ToString('b25lLCB0d28sIHRocmVl')]"),
            json!("one, two, three")
        );
        assert_eq!(eval("[base64ToString(base64('ünï'))]"), json!("ünï"));
        assert_eq!(
            eval_err("[base64ToString('a*b')]"),
            "expr: function 'base64ToString' got invalid base64 character '*' (at position 2)"
        );
    }
}
