//! Shared parts of the fault matrices (mock and QEMU): their real local targets, a fingerprint
//! of everything published, and the table each matrix prints and asserts.
#![allow(dead_code)] // Each matrix uses a different part.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imagebuilder_core::engine::RunReport;
use imagebuilder_core::environment::Environment;
use imagebuilder_core::run::{RunState, RunSubState};
use imagebuilder_core::template::model::{HyperVGeneration, OsType, SecurityType};
use imagebuilder_dist::registry::{ImageDefinition, OsState};
use imagebuilder_dist::LocalTargets;

/// Real local targets under `dir`: registries in `dir/state`, every region a folder under
/// `dir/regions`, and `gallery` with a Linux Gen1 definition `images/web` made.
pub(crate) fn local_targets_with_gallery(dir: &Path, gallery: &str) -> LocalTargets {
    let environment = Environment {
        state_dir: Some(dir.join("state")),
        platform_images: Vec::new(),
        regions: BTreeMap::from([(
            "*".to_owned(),
            format!("file://{}/regions/{{region}}", dir.display()),
        )]),
    };
    let targets = LocalTargets::new(&dir.join("state"), environment);
    targets
        .galleries()
        .create_gallery(gallery, "local", "")
        .unwrap();
    targets
        .galleries()
        .define_image(ImageDefinition {
            id: format!("{gallery}/images/web"),
            publisher: "Contoso".into(),
            offer: "web".into(),
            sku: "1".into(),
            os_type: OsType::Linux,
            os_state: OsState::Generalized,
            hyper_v_generation: HyperVGeneration::V1,
            security_type: SecurityType::Standard,
            description: String::new(),
            created: String::new(),
        })
        .unwrap();
    targets
}

/// Every file under some folders, by path, with its sha256: what earlier runs published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Published(BTreeMap<PathBuf, String>);

impl Published {
    /// Hashes every file under `roots` (missing roots hold nothing).
    pub(crate) async fn take(roots: &[PathBuf]) -> Self {
        let mut files = BTreeMap::new();
        for root in roots {
            for path in files_under(root) {
                let (sha256, _) = imagebuilder_core::artifacts::sha256_file(&path)
                    .await
                    .unwrap_or_else(|e| panic!("hashing {}: {e}", path.display()));
                files.insert(path, sha256);
            }
        }
        Self(files)
    }

    /// How many files there are.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Files of `before` that are now missing or different.
    pub(crate) fn changed_since(&self, before: &Published) -> Vec<String> {
        before
            .0
            .iter()
            .filter_map(|(path, sha)| match self.0.get(path) {
                None => Some(format!("removed {}", path.display())),
                Some(now) if now != sha => Some(format!("changed {}", path.display())),
                Some(_) => None,
            })
            .collect()
    }

    /// Files that were not in `before`.
    pub(crate) fn added_since(&self, before: &Published) -> Vec<String> {
        self.0
            .keys()
            .filter(|path| !before.0.contains_key(*path))
            .map(|path| format!("added {}", path.display()))
            .collect()
    }
}

/// Every regular file under `root`, recursively.
pub(crate) fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => found.extend(files_under(&path)),
            Ok(t) if t.is_file() => found.push(path),
            _ => {}
        }
    }
    found.sort();
    found
}

/// One row of a fault matrix, as it turned out.
#[derive(Debug, Clone)]
pub(crate) struct MatrixRow {
    pub(crate) fault: String,
    pub(crate) phase: String,
    pub(crate) run_state: RunState,
    pub(crate) run_sub_state: RunSubState,
    /// The run's message, with the failed targets' messages after it.
    pub(crate) message: String,
    /// What was left behind; empty when nothing.
    pub(crate) leaks: Vec<String>,
    /// Published files changed or removed (or added by a run that published nothing).
    pub(crate) published: Vec<String>,
    /// Everything this row got wrong; empty when it passed.
    pub(crate) problems: Vec<String>,
}

impl MatrixRow {
    /// The row for `report`, checked against what was expected: the states, and `cause`
    /// somewhere in the message (or a failed target's message).
    pub(crate) fn check(
        fault: &str,
        phase: &str,
        report: &RunReport,
        expected: (RunState, RunSubState),
        cause: &str,
    ) -> Self {
        let mut message = report.message.clone();
        for failure in &report.failures {
            message.push_str(&format!(
                " [{}: {}]",
                failure.run_output_name, failure.message
            ));
        }
        let mut problems = Vec::new();
        if (report.run_state, report.run_sub_state) != expected {
            problems.push(format!(
                "ended {:?}/{:?}, expected {:?}/{:?}",
                report.run_state, report.run_sub_state, expected.0, expected.1
            ));
        }
        if !message.contains(cause) {
            problems.push(format!("the message does not name the cause {cause:?}"));
        }
        Self {
            fault: fault.to_owned(),
            phase: phase.to_owned(),
            run_state: report.run_state,
            run_sub_state: report.run_sub_state,
            message,
            leaks: Vec::new(),
            published: Vec::new(),
            problems,
        }
    }

    /// A row that could not run here, and why (not a failure).
    pub(crate) fn skipped(fault: &str, phase: &str, why: &str) -> Self {
        Self {
            fault: fault.to_owned(),
            phase: phase.to_owned(),
            run_state: RunState::Running,
            run_sub_state: RunSubState::Queued,
            message: format!("skipped: {why}"),
            leaks: Vec::new(),
            published: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Records what was left behind (each one a problem).
    pub(crate) fn leaked(&mut self, leaks: Vec<String>) {
        self.problems
            .extend(leaks.iter().map(|l| format!("leak: {l}")));
        self.leaks.extend(leaks);
    }

    /// Records what happened to earlier outputs (each change a problem).
    pub(crate) fn published(&mut self, changes: Vec<String>) {
        self.problems
            .extend(changes.iter().map(|c| format!("published: {c}")));
        self.published.extend(changes);
    }
}

/// The matrix as a markdown table, then every row's problems.
pub(crate) fn table(rows: &[MatrixRow]) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = String::from(
        "| fault | phase | runState | subState | message | leaks | published intact |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        // The head says what failed, the tail why: keep both of a long message.
        let chars: Vec<char> = row.message.chars().collect();
        let message = if chars.len() > 200 {
            let head: String = chars[..100].iter().collect();
            let tail: String = chars[chars.len() - 90..].iter().collect();
            format!("{head} ... {tail}")
        } else {
            row.message.clone()
        };
        out.push_str(&format!(
            "| {} | {} | {:?} | {:?} | {} | {} | {} |\n",
            cell(&row.fault),
            cell(&row.phase),
            row.run_state,
            row.run_sub_state,
            cell(&message),
            if row.leaks.is_empty() {
                "none".to_owned()
            } else {
                cell(&row.leaks.join("; "))
            },
            if row.published.is_empty() {
                "yes".to_owned()
            } else {
                cell(&format!("NO: {}", row.published.join("; ")))
            },
        ));
    }
    out
}

/// Prints the table (visible with `--nocapture`) and fails naming every row that failed.
pub(crate) fn print_and_assert(title: &str, rows: &[MatrixRow]) {
    println!("\n{title}\n\n{}", table(rows));
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| format!("{} / {}: {}", r.fault, r.phase, r.problems.join("; ")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} rows failed:\n{}",
        failed.len(),
        rows.len(),
        failed.join("\n")
    );
}
