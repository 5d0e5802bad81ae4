//! Several stores, threads and processes on one state directory.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use imagebuilder_core::run::{RunOutput, RunState, RunSubState};
use imagebuilder_core::store::{RunGuard, StoreError, TemplateStore};
use imagebuilder_core::template::{parse_document, ImageTemplate, ParseOptions};
use serde_json::{json, Value};

const THREADS: usize = 16;

struct StateDir(PathBuf);

impl StateDir {
    fn new(test: &str) -> Self {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("store-concurrency-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        Self(path)
    }

    fn store(&self) -> TemplateStore {
        TemplateStore::open(&self.0).expect("open the state directory")
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn template_tagged(tag: usize) -> ImageTemplate {
    let value = json!({
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2024-02-01",
        "location": "westus2",
        "tags": {"writer": tag.to_string()},
        "properties": {
            "source": {"type": "PlatformImage", "publisher": "Canonical",
                       "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                       "version": "latest"},
            "distribute": [{"type": "VHD", "runOutputName": "vhd"}]
        }
    });
    let doc = parse_document(&value.to_string(), &ParseOptions::default()).expect("valid");
    doc.templates.into_iter().next().expect("one template")
}

fn output(name: &str, size: u64) -> RunOutput {
    RunOutput {
        run_output_name: name.to_owned(),
        artifact_id: format!("file:///images/{name}.vhd"),
        artifact_uri: String::new(),
        sha256: "cd".repeat(32),
        size,
        tags: BTreeMap::new(),
    }
}

/// Runs `f(i, store)` on `THREADS` threads at once, each with its own store.
fn race<T: Send + 'static>(
    dir: &StateDir,
    f: impl Fn(usize, TemplateStore) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(THREADS));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (barrier, f, store) = (barrier.clone(), f.clone(), dir.store());
            thread::spawn(move || {
                barrier.wait();
                f(i, store)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("no panic"))
        .collect()
}

#[test]
fn racing_creators_of_one_name_exactly_one_wins() {
    let dir = StateDir::new("create");
    for round in 0..5 {
        let name = format!("race-{round}");
        let n = name.clone();
        let results = race(&dir, move |i, store| store.create(&n, &template_tagged(i)));
        let winners: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_ok())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for r in results.iter().filter(|r| r.is_err()) {
            assert!(matches!(r, Err(StoreError::AlreadyExists { .. })), "{r:?}");
        }
        let stored = dir.store().get(&name).unwrap();
        assert_eq!(stored.template.tags["writer"], winners[0].to_string());
    }
    assert_eq!(dir.store().list().unwrap().len(), 5);
    assert_eq!(fs::read_dir(dir.0.join("tmp")).unwrap().count(), 0);
}

#[test]
fn racing_runs_of_one_template_exactly_one_starts() {
    let dir = StateDir::new("begin-run");
    dir.store().create("jammy", &template_tagged(0)).unwrap();
    // Guards come back to this thread, so the winner holds its lock until all have tried.
    let results: Vec<Result<RunGuard, StoreError>> =
        race(&dir, |_, store| store.begin_run("jammy"));
    let started = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(started, 1, "{results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(matches!(r, Err(StoreError::RunActive { .. })), "{r:?}");
    }
    let runs = fs::read_dir(dir.0.join("templates/jammy/staging/runs"))
        .unwrap()
        .count();
    assert_eq!(runs, 1, "only the winner made a run directory");
    drop(results);
    dir.store().begin_run("jammy").unwrap();
}

#[test]
fn racing_deletes_and_runs_never_both_succeed() {
    let dir = StateDir::new("delete-vs-run");
    for round in 0..5 {
        dir.store()
            .create("jammy", &template_tagged(round))
            .unwrap();
        let results = race(&dir, |i, store| {
            if i % 2 == 0 {
                store.delete("jammy").map(|()| None)
            } else {
                store.begin_run("jammy").map(Some)
            }
        });
        let deleted = results.iter().filter(|r| matches!(r, Ok(None))).count();
        let started = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
        assert_eq!(deleted + started, 1, "round {round}: {results:?}");
        for r in results.iter().filter(|r| r.is_err()) {
            assert!(
                matches!(
                    r,
                    Err(StoreError::RunActive { .. } | StoreError::NotFound { .. })
                ),
                "{r:?}"
            );
        }
        drop(results);
        let _ = dir.store().delete("jammy");
    }
}

#[test]
fn concurrent_status_and_output_writes_leave_valid_json() {
    const WRITERS: usize = 8;
    const ROUNDS: u64 = 10;
    let dir = StateDir::new("writes");
    let store = dir.store();
    store.create("jammy", &template_tagged(0)).unwrap();
    let run = Arc::new(store.begin_run("jammy").unwrap());
    let run_file = run.run_dir().join("run.json");
    let resource_file = dir.0.join("templates/jammy/resource.json");

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let run = run.clone();
            thread::spawn(move || {
                let sub = RunSubState::ALL[w % RunSubState::ALL.len()];
                for round in 0..ROUNDS {
                    run.set_status(RunState::Running, sub, &format!("writer {w} round {round}"))
                        .unwrap();
                    run.record_outputs(&[output(&format!("out-{w}"), round)])
                        .unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let store = dir.store();
            let (run_file, resource_file) = (run_file.clone(), resource_file.clone());
            thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let status = store.get("jammy").unwrap().last_run_status.unwrap();
                    assert_eq!(status.run_state, RunState::Running);
                    assert!(store.outputs("jammy").unwrap().len() <= WRITERS);
                    assert_eq!(store.list().unwrap().len(), 1);
                    // Readers outside the store's locks never see a torn file either.
                    for file in [&run_file, &resource_file] {
                        serde_json::from_slice::<Value>(&fs::read(file).unwrap())
                            .expect("whole JSON");
                    }
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.join().expect("no panic");
    }

    let outputs = store.outputs("jammy").unwrap();
    assert_eq!(outputs.len(), WRITERS);
    assert!(outputs.iter().all(|o| o.size == ROUNDS - 1), "{outputs:?}");
    let record: Value = serde_json::from_slice(&fs::read(&run_file).unwrap()).unwrap();
    assert_eq!(record["outputs"].as_array().unwrap().len(), WRITERS);
    assert!(record["message"]
        .as_str()
        .unwrap()
        .ends_with(&format!("round {}", ROUNDS - 1)));
    let resource: Value = serde_json::from_slice(&fs::read(&resource_file).unwrap()).unwrap();
    assert_eq!(resource["lastRunStatus"]["runState"], "Running");
    // No temporary file of an interrupted write is left.
    for d in [run.run_dir().to_owned(), dir.0.join("templates/jammy")] {
        for entry in fs::read_dir(d).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "{name}");
        }
    }
    let run = Arc::try_unwrap(run).expect("last reference");
    run.finish(RunState::Succeeded, RunSubState::Distributing, "")
        .unwrap();
}

const CHILD_DIR: &str = "IMAGEBUILDER_STORE_TEST_CHILD_DIR";

/// Not a test of its own: the child process of `a_run_lock_dies_with_its_process`, which
/// starts this test binary again with `CHILD_DIR` set. Without it, it does nothing.
#[test]
fn child_process_holding_a_run() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let store = TemplateStore::open(PathBuf::from(dir)).unwrap();
    let run = store.begin_run("jammy").unwrap();
    run.set_status(RunState::Running, RunSubState::Customizing, "child")
        .unwrap();
    println!("CHILD-RUNNING");
    while !run.cancel_requested() {
        thread::sleep(Duration::from_millis(10));
    }
    println!("CHILD-CANCELED");
    // Waits to be killed, as a crashed or hung process would, without finishing the run.
    thread::sleep(Duration::from_secs(120));
}

/// Kills the child process if the test fails before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_run_lock_dies_with_its_process() {
    let dir = StateDir::new("process");
    let store = dir.store();
    store.create("jammy", &template_tagged(0)).unwrap();
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_process_holding_a_run", "--nocapture"])
            .env(CHILD_DIR, &dir.0)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the child process"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut wait_for = |marker: &str| {
        for line in lines.by_ref() {
            if line.expect("child output").trim() == marker {
                return;
            }
        }
        panic!("the child process ended before printing {marker}");
    };
    wait_for("CHILD-RUNNING");

    assert!(matches!(
        store.begin_run("jammy"),
        Err(StoreError::RunActive { .. })
    ));
    assert!(matches!(
        store.delete("jammy"),
        Err(StoreError::RunActive { .. })
    ));
    let status = store.get("jammy").unwrap().last_run_status.unwrap();
    assert_eq!(
        (status.run_state, status.message.as_str()),
        (RunState::Running, "child")
    );
    store.request_cancel("jammy").unwrap();
    wait_for("CHILD-CANCELED");

    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // The lock went with the process: the status shows the run is gone, and the template
    // can run and be deleted again.
    let status = store.get("jammy").unwrap().last_run_status.unwrap();
    assert_eq!(status.run_state, RunState::Failed);
    assert_eq!(status.run_sub_state, RunSubState::Customizing);
    let run = store.begin_run("jammy").unwrap();
    run.finish(RunState::Succeeded, RunSubState::Distributing, "")
        .unwrap();
    store.delete("jammy").unwrap();
}
