//! A run of a template: its id, its directory, and the guard that holds the run lock.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::fsio::{create_dir_all, read_json, write_atomic, write_json};
use super::layout::{TemplatePaths, CANCEL_MARKER, CUSTOMIZATION_LOG, RUN_FILE};
use super::lock::FileLock;
use super::record::ResourceState;
use super::StoreError;
use crate::run::{LastRunStatus, RunOutput, RunState, RunSubState};
use crate::template::rules::is_run_output_name;
use crate::template::{Diagnostics, ErrorCode, ImageTemplate, Path as JsonPath};

/// `staging/runs/<id>/run.json`: the record of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunFile {
    run_id: String,
    #[serde(flatten)]
    status: LastRunStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    outputs: Vec<RunOutput>,
}

/// The active run of a template. While it lives, the template's run lock is held: no other
/// run can start and the template cannot be deleted. Dropping it (or the process ending)
/// releases the lock.
///
/// A guard dropped without [`RunGuard::finish`] records the run as `Failed` (`Canceled`
/// when a cancel was requested), so a panicking engine still leaves a final state.
#[derive(Debug)]
pub struct RunGuard {
    name: String,
    paths: TemplatePaths,
    template: ImageTemplate,
    run_id: String,
    run_dir: PathBuf,
    artifacts_dir: PathBuf,
    start_time: OffsetDateTime,
    finished: bool,
    // Held for the life of the run; released on drop.
    _run_lock: FileLock,
}

/// A run id: the UTC start time with nanoseconds, so ids sort in start order.
fn run_id_at(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Starts a run. The caller holds the mutation lock and has taken `run_lock`.
pub(super) fn begin(
    name: &str,
    paths: TemplatePaths,
    template: ImageTemplate,
    mut state: ResourceState,
    run_lock: FileLock,
) -> Result<RunGuard, StoreError> {
    let artifacts_dir = paths.artifacts();
    create_dir_all(&artifacts_dir)?;
    create_dir_all(&paths.runs())?;
    create_dir_all(&paths.outputs())?;

    // Later than the previous run even if the clock stepped back, so ids stay sorted.
    let now = OffsetDateTime::now_utc();
    let mut start_time = match &state.last_run_status {
        Some(last) if last.start_time >= now => last.start_time + Duration::nanoseconds(1),
        _ => now,
    };
    let (run_id, run_dir) = loop {
        let id = run_id_at(start_time);
        let dir = paths.run(&id);
        match fs::create_dir(&dir) {
            Ok(()) => break (id, dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                start_time += Duration::nanoseconds(1);
            }
            Err(e) => return Err(StoreError::io("create run directory", &dir, e)),
        }
    };
    write_atomic(&run_dir.join(CUSTOMIZATION_LOG), b"")?;
    let status = LastRunStatus {
        start_time,
        end_time: None,
        run_state: RunState::Running,
        run_sub_state: RunSubState::Queued,
        message: String::new(),
    };
    write_json(
        &run_dir.join(RUN_FILE),
        &RunFile {
            run_id: run_id.clone(),
            status: status.clone(),
            outputs: Vec::new(),
        },
    )?;
    state.last_run_status = Some(status);
    state.last_run_id = Some(run_id.clone());
    state.save(&paths)?;
    Ok(RunGuard {
        name: name.to_owned(),
        paths,
        template,
        run_id,
        run_dir,
        artifacts_dir,
        start_time,
        finished: false,
        _run_lock: run_lock,
    })
}

impl RunGuard {
    /// The template's name.
    pub fn template_name(&self) -> &str {
        &self.name
    }

    /// The template as it was when the run started (a later patch does not change it).
    pub fn template(&self) -> &ImageTemplate {
        &self.template
    }

    /// The run's id: its start time, sortable (`20260415T101500.123456789Z`).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// When the run started (`lastRunStatus.startTime`).
    pub fn start_time(&self) -> OffsetDateTime {
        self.start_time
    }

    /// `staging/runs/<id>/`: `run.json`, `customization.log` and whatever else the run
    /// keeps.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// `staging/artifacts/`: fetched artifacts, kept across runs of the template.
    pub fn artifacts_dir(&self) -> &Path {
        &self.artifacts_dir
    }

    /// `staging/runs/<id>/customization.log` (created empty when the run starts).
    pub fn customization_log(&self) -> PathBuf {
        self.run_dir.join(CUSTOMIZATION_LOG)
    }

    /// Records a status of the ongoing run in `lastRunStatus` and `run.json`.
    ///
    /// # Errors
    /// [`StoreError::InvalidRunState`] for a terminal state (use [`RunGuard::finish`]);
    /// [`StoreError::Io`] or [`StoreError::Corrupt`] when the state files cannot be updated.
    pub fn set_status(
        &self,
        run_state: RunState,
        run_sub_state: RunSubState,
        message: &str,
    ) -> Result<(), StoreError> {
        if run_state.is_terminal() {
            return Err(StoreError::InvalidRunState {
                operation: "update a run's status",
                run_state,
            });
        }
        self.write_status(run_state, Some(run_sub_state), message, None)
    }

    /// True once [`super::TemplateStore::request_cancel`] was called for this run, from any
    /// process. The run polls it and reports `Canceling`, then `Canceled`.
    pub fn cancel_requested(&self) -> bool {
        self.run_dir.join(CANCEL_MARKER).exists()
    }

    /// Records published artifacts: each replaces the template's run output of the same
    /// `runOutputName` (see [`super::TemplateStore::outputs`]) and is added to `run.json`.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] (code `BadDistributeType`) for an output whose
    /// `runOutputName` is not valid; [`StoreError::Io`] or [`StoreError::Corrupt`] when
    /// files cannot be written. Nothing is written when a name is invalid.
    pub fn record_outputs(&self, outputs: &[RunOutput]) -> Result<(), StoreError> {
        let mut diags = Diagnostics::default();
        for (i, output) in outputs.iter().enumerate() {
            if !is_run_output_name(&output.run_output_name) {
                diags.error(
                    &JsonPath::new("runOutputs").index(i).field("runOutputName"),
                    ErrorCode::BadDistributeType,
                    format!(
                        "'{}' is not a valid runOutputName; expected 1 to 64 letters, digits, '-', '_' or '.'",
                        output.run_output_name
                    ),
                );
            }
        }
        if diags.has_errors() {
            return Err(StoreError::Invalid(diags));
        }
        let _lock = FileLock::exclusive(&self.paths.mutation_lock)?;
        create_dir_all(&self.paths.outputs())?;
        for output in outputs {
            write_json(&self.paths.output_file(&output.run_output_name), output)?;
        }
        let run_file = self.run_dir.join(RUN_FILE);
        let mut record: RunFile = read_json(&run_file)?;
        for output in outputs {
            record
                .outputs
                .retain(|o| o.run_output_name != output.run_output_name);
            record.outputs.push(output.clone());
        }
        record
            .outputs
            .sort_by(|a, b| a.run_output_name.cmp(&b.run_output_name));
        write_json(&run_file, &record)
    }

    /// Ends the run: records its terminal state and `endTime`, then releases the run lock.
    ///
    /// # Errors
    /// [`StoreError::InvalidRunState`] for a state that is not terminal;
    /// [`StoreError::Io`] or [`StoreError::Corrupt`] when the state files cannot be updated.
    /// The run lock is released either way, and an unrecorded end shows as `Failed`.
    pub fn finish(
        mut self,
        run_state: RunState,
        run_sub_state: RunSubState,
        message: &str,
    ) -> Result<(), StoreError> {
        if !run_state.is_terminal() {
            return Err(StoreError::InvalidRunState {
                operation: "finish a run",
                run_state,
            });
        }
        self.finished = true;
        let end_time = OffsetDateTime::now_utc().max(self.start_time);
        self.write_status(run_state, Some(run_sub_state), message, Some(end_time))
    }

    /// Writes `lastRunStatus` and `run.json` under the mutation lock. `None` keeps the
    /// sub-state last recorded.
    fn write_status(
        &self,
        run_state: RunState,
        run_sub_state: Option<RunSubState>,
        message: &str,
        end_time: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let _lock = FileLock::exclusive(&self.paths.mutation_lock)?;
        let mut state = ResourceState::load(&self.paths)?;
        let run_sub_state = run_sub_state
            .or_else(|| state.last_run_status.as_ref().map(|s| s.run_sub_state))
            .unwrap_or(RunSubState::Queued);
        let status = LastRunStatus {
            start_time: self.start_time,
            end_time,
            run_state,
            run_sub_state,
            message: message.to_owned(),
        };
        state.last_run_status = Some(status.clone());
        state.last_run_id = Some(self.run_id.clone());
        state.save(&self.paths)?;
        let run_file = self.run_dir.join(RUN_FILE);
        let mut record: RunFile = read_json(&run_file)?;
        record.status = status;
        write_json(&run_file, &record)
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let run_state = if self.cancel_requested() {
            RunState::Canceled
        } else {
            RunState::Failed
        };
        let end_time = OffsetDateTime::now_utc().max(self.start_time);
        let message = "the run ended without reporting a final state";
        if let Err(e) = self.write_status(run_state, None, message, Some(end_time)) {
            tracing::warn!(template = %self.name, run_id = %self.run_id, error = %e, "failed to record the end of an abandoned run");
        }
    }
}

#[cfg(test)]
mod tests {
    use time::{Date, Month};

    use super::*;

    #[test]
    fn run_ids_sort_by_start_time() {
        let day = Date::from_calendar_date(2026, Month::April, 15).unwrap();
        let a = run_id_at(day.with_hms_nano(9, 5, 3, 7).unwrap().assume_utc());
        let b = run_id_at(day.with_hms(10, 0, 0).unwrap().assume_utc());
        assert_eq!(a, "20260415T090503.000000007Z");
        assert!(a < b);
        assert!(super::super::layout::is_run_id(&a));
    }
}
