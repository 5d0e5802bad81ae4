//! Durations written the way AIB's `restartTimeout` takes them (Go syntax: `5m`, `2h`, `1h30m`).

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// The text was not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a duration; expected a number with a unit (ns, us, ms, s, m, h) such as '5m', '2h' or '1h30m'")]
pub struct InvalidDuration {
    /// The offending text.
    pub text: String,
}

/// Parses a Go duration: one or more `<number><unit>` groups, or a bare `0`.
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration {
        text: text.to_owned(),
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(invalid());
    }
    let mut rest = text;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        total_nanos += number * nanos_per_unit;
        rest = &rest[unit_len..];
    }
    // Anything past about 292 years overflows Go's duration too.
    if total_nanos > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total_nanos as u64))
}

/// A duration kept with the text it was written as, so templates serialize unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationText {
    text: String,
    value: Duration,
}

impl DurationText {
    /// Parses `text` as a duration.
    pub fn parse(text: &str) -> Result<Self, InvalidDuration> {
        Ok(Self {
            value: parse_duration(text)?,
            text: text.to_owned(),
        })
    }

    /// The duration.
    pub fn duration(&self) -> Duration {
        self.value
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for DurationText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn rejects_other_text() {
        for bad in ["", "5", "5 minutes", "m", "5x", "-5m", "5m3", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
        let err = parse_duration("5 minutes").unwrap_err();
        assert!(err.to_string().contains("'5 minutes' is not a duration"));
    }

    #[test]
    fn keeps_the_text() {
        let d = DurationText::parse("90s").unwrap();
        assert_eq!(d.as_str(), "90s");
        assert_eq!(d.duration(), Duration::from_secs(90));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"90s\"");
    }
}
