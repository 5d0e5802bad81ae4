//! Scripted answers to guest commands.

use std::time::Duration;

/// What a mock guest answers to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockResponse {
    /// Exit code.
    pub exit_code: i32,
    /// Lines printed on stdout.
    pub stdout: Vec<String>,
    /// Lines printed on stderr.
    pub stderr: Vec<String>,
    /// How long the command takes.
    pub delay: Duration,
    /// The command panics the host (to test that the engine survives a panicking step).
    pub panic: bool,
}

impl MockResponse {
    /// Exits with `code`, printing nothing.
    pub fn exit(code: i32) -> Self {
        Self {
            exit_code: code,
            stdout: Vec::new(),
            stderr: Vec::new(),
            delay: Duration::ZERO,
            panic: false,
        }
    }

    /// Succeeds, printing `line`.
    pub fn stdout_line(line: impl Into<String>) -> Self {
        Self::exit(0).stdout(line)
    }

    /// Also prints `line` on stdout.
    pub fn stdout(mut self, line: impl Into<String>) -> Self {
        self.stdout.push(line.into());
        self
    }

    /// Also prints `line` on stderr.
    pub fn stderr(mut self, line: impl Into<String>) -> Self {
        self.stderr.push(line.into());
        self
    }

    /// Takes `delay` before answering.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Panics instead of answering.
    pub fn panics() -> Self {
        Self {
            panic: true,
            ..Self::exit(0)
        }
    }
}

/// Rules in the order added; the last added matching rule wins, so tests can override.
#[derive(Debug, Default)]
pub(super) struct Rules {
    rules: Vec<(String, MockResponse)>,
}

impl Rules {
    pub(super) fn add(&mut self, contains: &str, response: MockResponse) {
        self.rules.push((contains.to_owned(), response));
    }

    pub(super) fn answer(&self, command: &str) -> Option<MockResponse> {
        self.rules
            .iter()
            .rev()
            .find(|(needle, _)| command.contains(needle.as_str()))
            .map(|(_, response)| response.clone())
    }
}
