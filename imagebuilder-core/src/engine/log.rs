//! The run's `customization.log` and the guest-output event stream, fed together.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

use super::scrub::Scrubber;
use super::{BuildEvent, EventSink};
use crate::host::{OutputLine, OutputSink, OutputStream};

/// Writes timestamped lines to the log file and guest output to the event sink.
/// Every line and event goes through the run's scrubber first.
pub(super) struct RunLog {
    file: Option<Arc<Mutex<BufWriter<File>>>>,
    events: Arc<dyn EventSink>,
    scrub: Scrubber,
}

impl RunLog {
    pub(super) fn open(
        path: Option<&Path>,
        events: Arc<dyn EventSink>,
        scrub: Scrubber,
    ) -> std::io::Result<Self> {
        let file = match path {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                Some(Arc::new(Mutex::new(BufWriter::new(file))))
            }
            None => None,
        };
        Ok(Self {
            file,
            events,
            scrub,
        })
    }

    /// A line from the engine itself.
    pub(super) fn note(&self, text: &str) {
        let text = self.scrub.text(text);
        tracing::info!("{text}");
        self.write("imagebuilder", &text);
    }

    pub(super) fn emit(&self, event: BuildEvent) {
        self.events.emit(self.scrub.event(event));
    }

    /// `text` as the run may show it.
    pub(super) fn scrubbed(&self, text: &str) -> String {
        self.scrub.text(text).into_owned()
    }

    fn write(&self, who: &str, text: &str) {
        if let Some(file) = &self.file {
            write_line(file, who, &self.scrub.text(text));
        }
    }

    pub(super) fn flush(&self) {
        if let Some(file) = &self.file {
            let _ = file.lock().unwrap_or_else(PoisonError::into_inner).flush();
        }
    }

    /// The sink for a VM's serial console: into the log only (it is noisy). It outlives
    /// provisioning, as the console keeps printing while the VM runs.
    pub(super) fn console(&self) -> Arc<dyn OutputSink> {
        let (file, scrub) = (self.file.clone(), self.scrub.clone());
        Arc::new(move |line: OutputLine<'_>| {
            if let Some(file) = &file {
                write_line(file, "console", &scrub.text(line.text));
            }
        })
    }
}

fn write_line(file: &Mutex<BufWriter<File>>, who: &str, text: &str) {
    let now = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
    // A full disk must not fail the build; the events still carry the output.
    let _ = writeln!(file, "{now} [{who}] {text}");
}

impl OutputSink for RunLog {
    fn line(&self, line: OutputLine<'_>) {
        let who = match line.stream {
            OutputStream::Stdout => "guest",
            OutputStream::Stderr => "guest:err",
        };
        self.write(who, line.text);
        self.emit(BuildEvent::GuestOutput {
            stream: line.stream,
            line: line.text.to_owned(),
        });
    }
}
