//! Keeping a run's secrets out of everything it writes.

use std::borrow::Cow;

use super::BuildEvent;

/// Replaces each secret value with `<redacted>` in text.
#[derive(Debug, Clone, Default)]
pub(super) struct Scrubber {
    // Longest first, so a secret containing another is replaced whole.
    secrets: Vec<String>,
}

/// What a secret becomes.
const REDACTED: &str = "<redacted>";

impl Scrubber {
    pub(super) fn new(mut secrets: Vec<String>) -> Self {
        secrets.retain(|s| !s.is_empty());
        secrets.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` without any secret.
    pub(super) fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = Cow::Owned(text.replace(secret.as_str(), REDACTED));
            }
        }
        text
    }

    fn owned(&self, text: String) -> String {
        match self.text(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(scrubbed) => scrubbed,
        }
    }

    /// `event` with every text it carries scrubbed.
    pub(super) fn event(&self, event: BuildEvent) -> BuildEvent {
        if self.secrets.is_empty() {
            return event;
        }
        let opt = |text: Option<String>| text.map(|t| self.owned(t));
        match event {
            BuildEvent::GuestOutput { stream, line } => BuildEvent::GuestOutput {
                stream,
                line: self.owned(line),
            },
            BuildEvent::StepFinished {
                phase,
                index,
                step,
                duration,
                error,
            } => BuildEvent::StepFinished {
                phase,
                index,
                step,
                duration,
                error: opt(error),
            },
            BuildEvent::TargetFinished {
                run_output_name,
                artifact_id,
                error,
            } => BuildEvent::TargetFinished {
                run_output_name,
                artifact_id: opt(artifact_id),
                error: opt(error),
            },
            BuildEvent::ArtifactStaged { uri, sha256, size } => BuildEvent::ArtifactStaged {
                uri: self.owned(uri),
                sha256,
                size,
            },
            BuildEvent::SourceResolved {
                location,
                exact_version,
            } => BuildEvent::SourceResolved {
                location: self.owned(location),
                exact_version,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_secrets_go_whole_and_events_are_scrubbed() {
        let scrub = Scrubber::new(vec!["abc".into(), "xxabcxx".into(), String::new()]);
        assert_eq!(scrub.text("1 xxabcxx 2 abc"), "1 <redacted> 2 <redacted>");
        assert!(matches!(scrub.text("nothing"), Cow::Borrowed(_)));
        let event = scrub.event(BuildEvent::GuestOutput {
            stream: crate::host::OutputStream::Stdout,
            line: "token=abc".into(),
        });
        assert_eq!(
            event,
            BuildEvent::GuestOutput {
                stream: crate::host::OutputStream::Stdout,
                line: "token=<redacted>".into()
            }
        );
    }
}
