//! `utcNow([format])`: the current UTC time, formatted like .NET.
//!
//! ARM only allows `utcNow` in a parameter's `defaultValue`, since
//! anywhere else it would make a deployment non-repeatable.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{Args, CallContext};

/// ARM's default `utcNow` format.
const DEFAULT_FORMAT: &str = "yyyyMMddTHHmmssZ";

/// `utcNow([format])`.
pub(crate) fn utc_now(a: &Args<'_>, c: &CallContext<'_>) -> Result<Value, String> {
    a.between(0, 1)?;
    if !c.in_parameter_default {
        return Err(a.error("can only be used in a parameter defaultValue"));
    }
    let fmt = if a.len() == 1 {
        a.string(0)?
    } else {
        DEFAULT_FORMAT
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| a.error("found the system clock before 1970"))?;
    let secs = i64::try_from(now.as_secs()).map_err(|_| a.error("found the clock out of range"))?;
    format_utc(secs, now.subsec_nanos(), fmt)
        .map(Value::String)
        .map_err(|m| a.error(m))
}

/// Calendar fields of a UTC instant.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    weekday: usize,
}

fn civil(secs: i64, nanos: u32) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Days-to-date conversion over 400-year eras (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
        nanos,
        // 1970-01-01 was a Thursday (index 4 with Sunday = 0).
        weekday: (days + 4).rem_euclid(7) as usize,
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats a UTC instant with a .NET standard (`u`, `s`, `o`, `d`, `t`,
/// `T`) or custom (`yyyy-MM-dd HH:mm:ss`) date format.
pub(crate) fn format_utc(secs: i64, nanos: u32, fmt: &str) -> Result<String, String> {
    let custom = match fmt {
        "u" => "yyyy-MM-dd HH:mm:ssZ",
        "s" => "yyyy-MM-ddTHH:mm:ss",
        "o" | "O" => "yyyy-MM-ddTHH:mm:ss.fffffffZ",
        "d" => "MM/dd/yyyy",
        "t" => "HH:mm",
        "T" => "HH:mm:ss",
        f if f.chars().count() == 1 && f.chars().all(|c| c.is_ascii_alphabetic()) => {
            return Err(format!("standard date format '{f}' is not supported"))
        }
        f => f,
    };
    let t = civil(secs, nanos);
    let chars: Vec<char> = custom.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        match c {
            'y' => {
                let y = if run <= 2 { t.year % 100 } else { t.year };
                // As many digits as `y`s, like .NET. The zeros are added by
                // hand: std's `{:0width$}` panics for widths over 65 535.
                let digits = y.unsigned_abs().to_string();
                if y < 0 {
                    out.push('-');
                }
                out.extend(std::iter::repeat_n('0', run.saturating_sub(digits.len())));
                out.push_str(&digits);
            }
            'M' => match run {
                1 | 2 => out.push_str(&format!("{:0run$}", t.month)),
                3 => out.push_str(&MONTHS[t.month as usize - 1][..3]),
                _ => out.push_str(MONTHS[t.month as usize - 1]),
            },
            'd' => match run {
                1 | 2 => out.push_str(&format!("{:0run$}", t.day)),
                3 => out.push_str(&DAYS[t.weekday][..3]),
                _ => out.push_str(DAYS[t.weekday]),
            },
            'H' => out.push_str(&format!("{:0w$}", t.hour, w = run.min(2))),
            'h' => {
                let h12 = if t.hour.is_multiple_of(12) {
                    12
                } else {
                    t.hour % 12
                };
                out.push_str(&format!("{h12:0w$}", w = run.min(2)));
            }
            'm' => out.push_str(&format!("{:0w$}", t.minute, w = run.min(2))),
            's' => out.push_str(&format!("{:0w$}", t.second, w = run.min(2))),
            'f' => {
                if run > 7 {
                    return Err(format!("date format '{fmt}' has more than 7 'f' digits"));
                }
                let digits = format!("{:09}", t.nanos);
                out.push_str(&digits[..run]);
            }
            't' => {
                let ampm = if t.hour < 12 { "AM" } else { "PM" };
                out.push_str(&ampm[..run.min(2)]);
            }
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == c)
                    .ok_or_else(|| format!("date format '{fmt}' has an unterminated quote"))?;
                out.extend(&chars[i + 1..i + 1 + end]);
                i += end + 2;
                continue;
            }
            '\\' => {
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                }
                i += 2;
                continue;
            }
            '%' => {
                i += 1;
                continue;
            }
            other => {
                out.push(other);
                i += 1;
                continue;
            }
        }
        i += run;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::arm::environment::ArmEnvironment;
    use crate::template::arm::test_support::eval_err;

    // 2024-02-29T13:05:09.123456789Z, a Thursday.
    const T: i64 = 1_709_211_909;
    const N: u32 = 123_456_789;

    #[test]
    fn default_and_standard_formats() {
        assert_eq!(
            format_utc(T, N, DEFAULT_FORMAT).unwrap(),
            "20240229T130509Z"
        );
        assert_eq!(format_utc(T, N, "u").unwrap(), "2024-02-29 13:05:09Z");
        assert_eq!(format_utc(T, N, "s").unwrap(), "2024-02-29T13:05:09");
        assert_eq!(
            format_utc(T, N, "o").unwrap(),
            "2024-02-29T13:05:09.1234567Z"
        );
        assert_eq!(format_utc(T, N, "d").unwrap(), "02/29/2024");
        assert_eq!(format_utc(T, N, "T").unwrap(), "13:05:09");
        assert_eq!(
            format_utc(T, N, "D").unwrap_err(),
            "standard date format 'D' is not supported"
        );
    }

    #[test]
    fn custom_formats() {
        assert_eq!(format_utc(T, N, "yy.M.d h:m tt").unwrap(), "24.2.29 1:5 PM");
        assert_eq!(
            format_utc(T, N, "ddd dd MMM yyyy").unwrap(),
            "Thu 29 Feb 2024"
        );
        assert_eq!(
            format_utc(T, N, "dddd, MMMM").unwrap(),
            "Thursday, February"
        );
        assert_eq!(format_utc(T, N, "'day' d \\y fff").unwrap(), "day 29 y 123");
        assert_eq!(
            format_utc(0, 0, "yyyy-MM-dd HH:mm:ss").unwrap(),
            "1970-01-01 00:00:00"
        );
        assert_eq!(format_utc(-86_400, 0, "yyyy-MM-dd").unwrap(), "1969-12-31");
        assert_eq!(format_utc(T, N, "y yyyyyy").unwrap(), "24 002024");
    }

    #[test]
    fn long_runs_of_y_do_not_panic() {
        let fmt = "y".repeat(70_000);
        let out = format_utc(T, N, &fmt).unwrap();
        assert_eq!(out.len(), 70_000);
        assert!(out.ends_with("02024"));
    }

    #[test]
    fn only_allowed_in_parameter_defaults() {
        assert_eq!(
            eval_err("[utcNow()]"),
            "expr: function 'utcNow' can only be used in a parameter defaultValue (at position 2)"
        );
        let env = ArmEnvironment::default();
        let budget = crate::template::arm::limits::Budget::default();
        let ctx = CallContext {
            env: &env,
            content_version: "1",
            in_parameter_default: true,
            copy: None,
            budget: &budget,
        };
        let args = Args {
            name: "utcNow",
            values: vec![Value::String("yyyy".into())],
        };
        let year = utc_now(&args, &ctx).unwrap();
        let year: i64 = year.as_str().unwrap().parse().unwrap();
        assert!(year >= 2024);
    }
}
