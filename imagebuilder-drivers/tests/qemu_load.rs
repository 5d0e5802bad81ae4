//! Load on real VMs: six builds started at once through one engine whose memory budget fits
//! two of the QEMU host's VMs on this 2-core machine. All six succeed, each capture holds
//! its own build's marker and no other's, never more than two VMs run at once (seen both in
//! the events and in the QEMU processes), and nothing is left behind.
//!
//! The wall time and the most VMs seen at once are printed for the docs; they are figures,
//! not assertions.
#![cfg(feature = "qemu")]

mod qemu_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use imagebuilder_core::engine::{BuildEvent, Engine, EngineLimits, RunOptions};
use imagebuilder_core::host::BuildHost;
use imagebuilder_core::run::{RunState, RunSubState};
use imagebuilder_core::template::model::VmProfile;
use qemu_support::*;
use serde_json::json;

const BUILDS: usize = 6;
/// VMs the budget admits at once.
const SLOTS: u64 = 2;

/// Runs between leaving `Queued` (reaching `Building`) and ending, the most at once, and
/// how many runs reported `Queued`.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
    queued: AtomicUsize,
}

impl Gauge {
    fn observe(&self, event: &BuildEvent) {
        let BuildEvent::StateChanged {
            run_state,
            run_sub_state,
        } = event
        else {
            return;
        };
        match (run_state, run_sub_state) {
            (RunState::Running, RunSubState::Queued) => {
                self.queued.fetch_add(1, Ordering::SeqCst);
            }
            (RunState::Running, RunSubState::Building) => {
                let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
                self.peak.fetch_max(now, Ordering::SeqCst);
            }
            (state, _) if state.is_terminal() => {
                self.now.fetch_sub(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }
}

/// The builds whose marker (`prefix` then the build's number) the file at `path` holds,
/// found in one pass.
fn markers_in(path: &Path, prefix: &str) -> BTreeSet<usize> {
    let bytes = std::fs::read(path).unwrap();
    let prefix = prefix.as_bytes();
    bytes
        .windows(prefix.len() + 1)
        .filter(|w| w.starts_with(prefix) && w[prefix.len()].is_ascii_digit())
        .map(|w| usize::from(w[prefix.len()] - b'0'))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_real_builds_share_a_memory_budget_of_two_vms() {
    let Some(f) = Fixture::gen1("load_six") else {
        return;
    };
    let vm_mib = f
        .host
        .vm_memory_mib(&VmProfile::default())
        .expect("the QEMU host knows its VM size");
    let captures = f.dir.join("captures");
    let engine = Engine::new(
        Arc::new(f.host.clone()),
        f.source(),
        f.capture_targets_by_name(&captures),
    )
    .with_limits(EngineLimits {
        max_concurrent_vms: None,
        // Two VMs and half of a third: the budget, not a slot count, is what binds.
        memory_budget_mib: Some(SLOTS * vm_mib + vm_mib / 2),
    });
    // The markers are made in the guest, so the literal text is in no script and only a
    // file written by the build can put it into a capture.
    let nonce = std::process::id();
    let marker_prefix = format!("ibload-{nonce}-build");
    let templates: Vec<_> = (0..BUILDS)
        .map(|i| {
            f.template(|t| {
                t["name"] = json!(format!("load-{i}"));
                t["properties"]["customize"] = json!([
                    {"type": "Shell", "name": "marker", "inline": [
                        format!("printf '%s-%s\\n' ibload-{nonce} build{i} | sudo tee /etc/imagebuilder-load-marker"),
                        "sync"
                    ]}
                ]);
                t["properties"]["distribute"] =
                    json!([{"type": "VHD", "runOutputName": format!("capture-{i}")}]);
            })
        })
        .collect();

    let gauge = Arc::new(Gauge::default());
    let qemu_peak = Arc::new(AtomicUsize::new(0));
    let done = tokio_util::sync::CancellationToken::new();
    let sampler = {
        let (peak, done, dir) = (qemu_peak.clone(), done.clone(), f.dir.clone());
        tokio::task::spawn_blocking(move || {
            while !done.is_cancelled() {
                let running = qemu_processes_under(&dir).len();
                peak.fetch_max(running, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let started = Instant::now();
    let runs = templates.iter().enumerate().map(|(i, template)| {
        let dir = f.dir.join(format!("run-{i}"));
        let mut options = RunOptions::new(&dir);
        options.artifacts_dir = dir.join("artifacts");
        options.log_path = Some(dir.join("customization.log"));
        let gauge = gauge.clone();
        options.events = Arc::new(move |e: BuildEvent| gauge.observe(&e));
        engine.run(template, options)
    });
    let reports = join_all(runs).await;
    let wall = started.elapsed();
    done.cancel();
    sampler.await.unwrap();

    for (i, report) in reports.iter().enumerate() {
        let log = std::fs::read_to_string(f.dir.join(format!("run-{i}/customization.log")))
            .unwrap_or_default();
        assert_eq!(
            (report.run_state, report.run_sub_state),
            (RunState::Succeeded, RunSubState::Distributing),
            "build {i}: {}\n{log}",
            report.message
        );
    }
    for i in 0..BUILDS {
        let capture = captures.join(format!("capture-{i}.img"));
        assert_eq!(
            markers_in(&capture, &marker_prefix),
            BTreeSet::from([i]),
            "capture {i} holds its own build's marker and no other's"
        );
        assert!(
            !f.dir.join(format!("run-{i}/work")).exists(),
            "build {i}'s work dir was left behind"
        );
    }
    let event_peak = gauge.peak.load(Ordering::SeqCst);
    let process_peak = qemu_peak.load(Ordering::SeqCst);
    println!(
        "{BUILDS} real QEMU builds, budget {} MiB ({vm_mib} MiB a VM): wall time {:.1} s, \
         at most {event_peak} runs with a VM (events), {process_peak} QEMU processes (sampled), \
         {} runs reported Queued",
        SLOTS * vm_mib + vm_mib / 2,
        wall.as_secs_f64(),
        gauge.queued.load(Ordering::SeqCst),
    );
    assert!(
        event_peak as u64 <= SLOTS,
        "at most {SLOTS} runs had a VM at once, saw {event_peak}"
    );
    assert!(
        process_peak as u64 <= SLOTS,
        "at most {SLOTS} QEMU processes at once, saw {process_peak}"
    );
    assert!(process_peak >= 1, "the sampler saw the VMs");
    assert!(
        gauge.queued.load(Ordering::SeqCst) >= BUILDS - SLOTS as usize,
        "the runs beyond the budget waited in Queued"
    );
    assert_eq!(gauge.now.load(Ordering::SeqCst), 0);
    f.wait_for_no_leaks().await;
    f.assert_no_leaks();
    let _ = std::fs::remove_dir_all(&captures);
}
