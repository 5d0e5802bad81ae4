//! The serial console: every line into the run's log, the last lines kept for errors.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// The last lines the console printed.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsoleTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl ConsoleTail {
    const KEEP: usize = 40;

    pub(crate) fn push(&self, line: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == Self::KEEP {
            lines.pop_front();
        }
        lines.push_back(line.to_owned());
    }

    /// The kept lines, for an error message.
    pub(crate) fn text(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = String::new();
        for line in lines.iter() {
            text.push_str("\n  | ");
            text.push_str(line);
        }
        text
    }
}

/// Console output with terminal control sequences and carriage returns removed.
pub(crate) fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI sequences: ESC [ ... final byte in @..~
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cleans_escape_sequences_and_keeps_the_tail() {
        assert_eq!(super::clean("\u{1b}[0;32mOK\u{1b}[0m boot\r"), "OK boot");
        let tail = super::ConsoleTail::default();
        for i in 0..50 {
            tail.push(&format!("line {i}"));
        }
        let text = tail.text();
        assert!(
            text.starts_with("\n  | line 10") && text.ends_with("line 49"),
            "{text}"
        );
    }
}
