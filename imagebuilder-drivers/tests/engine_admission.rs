//! Admission control on the mock host: many concurrent runs, never more VMs (or VM memory)
//! at once than the engine's limits, queued runs in `Running/Queued`, all finishing.
#![cfg(feature = "mock")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use imagebuilder_core::distribute::InMemoryTargets;
use imagebuilder_core::engine::{BuildEvent, Engine, EngineLimits, EventSink, RunOptions};
use imagebuilder_core::run::{RunState, RunSubState};
use imagebuilder_core::source::SourceResolver;
use imagebuilder_core::template::{parse_value, ImageTemplate, ParseOptions};
use imagebuilder_drivers::mock::{MockBuildHost, MockOp};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn template() -> ImageTemplate {
    let doc = json!({
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2025-10-01",
        "name": "admission",
        "properties": {
            "source": {"type": "DiskImage", "uri": "file:///images/base.qcow2"},
            "customize": [{"type": "Shell", "name": "one", "inline": ["echo hi"]}],
            "distribute": [{"type": "VHD", "runOutputName": "vhd"}]
        }
    });
    let parsed = parse_value(&doc, &ParseOptions::default()).unwrap_or_else(|d| panic!("{d:?}"));
    parsed.templates.into_iter().next().unwrap()
}

/// Counts runs between leaving `Queued` and ending, and the most at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
    queued_seen: AtomicUsize,
}

impl Gauge {
    fn sink(self: &Arc<Self>) -> Arc<dyn EventSink> {
        let gauge = self.clone();
        Arc::new(move |event: BuildEvent| {
            if let BuildEvent::StateChanged {
                run_state,
                run_sub_state,
            } = event
            {
                if run_sub_state == RunSubState::Queued && run_state == RunState::Running {
                    gauge.queued_seen.fetch_add(1, Ordering::Relaxed);
                } else if run_sub_state == RunSubState::Building && run_state == RunState::Running {
                    let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
                    gauge.peak.fetch_max(now, Ordering::SeqCst);
                } else if run_state != RunState::Running && run_state != RunState::Canceling {
                    gauge.now.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })
    }
}

fn dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("engine_admission")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_runs_share_eight_vm_slots_and_all_succeed() {
    let host = MockBuildHost::new();
    host.delay(MockOp::Exec, Duration::from_millis(2));
    let engine = Engine::new(
        Arc::new(host.clone()),
        Arc::new(SourceResolver::default()),
        Arc::new(InMemoryTargets::new()),
    )
    .with_limits(EngineLimits {
        max_concurrent_vms: Some(8),
        memory_budget_mib: None,
    });
    let template = template();
    let gauge = Arc::new(Gauge::default());
    let root = dir("thousand");
    let runs = (0..1000).map(|i| {
        let mut options = RunOptions::new(root.join(i.to_string()));
        options.log_path = None;
        options.events = gauge.sink();
        engine.run(&template, options)
    });
    let reports = join_all(runs).await;
    let succeeded = reports
        .iter()
        .filter(|r| r.run_state == RunState::Succeeded)
        .count();
    assert_eq!(
        succeeded,
        1000,
        "{:?}",
        reports.iter().find(|r| r.run_state != RunState::Succeeded)
    );
    let peak = gauge.peak.load(Ordering::SeqCst);
    assert!(peak <= 8, "at most 8 runs had a VM at once, saw {peak}");
    assert!(peak >= 2, "runs did overlap: {peak}");
    assert!(
        gauge.queued_seen.load(Ordering::Relaxed) > 0,
        "some runs reported Queued"
    );
    assert_eq!(gauge.now.load(Ordering::SeqCst), 0);
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_budget_admits_as_many_vms_as_fit() {
    let host = MockBuildHost::new();
    host.delay(MockOp::Exec, Duration::from_millis(20));
    // The mock cannot say how big its VMs are: each counts as 1024 MiB.
    let engine = Engine::new(
        Arc::new(host),
        Arc::new(SourceResolver::default()),
        Arc::new(InMemoryTargets::new()),
    )
    .with_limits(EngineLimits {
        max_concurrent_vms: None,
        memory_budget_mib: Some(3 * 1024),
    });
    let template = template();
    let gauge = Arc::new(Gauge::default());
    let root = dir("memory");
    let runs = (0..24).map(|i| {
        let mut options = RunOptions::new(root.join(i.to_string()));
        options.events = gauge.sink();
        engine.run(&template, options)
    });
    let reports = join_all(runs).await;
    assert!(reports.iter().all(|r| r.run_state == RunState::Succeeded));
    let peak = gauge.peak.load(Ordering::SeqCst);
    assert!(
        (2..=3).contains(&peak),
        "three 1 GiB VMs fit in 3 GiB; saw {peak} at once"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_can_be_canceled_and_never_gets_a_vm() {
    let host = MockBuildHost::new();
    host.delay(MockOp::Exec, Duration::from_millis(500));
    let engine = Engine::new(
        Arc::new(host.clone()),
        Arc::new(SourceResolver::default()),
        Arc::new(InMemoryTargets::new()),
    )
    .with_limits(EngineLimits {
        max_concurrent_vms: Some(1),
        memory_budget_mib: None,
    });
    let template = template();
    let root = dir("cancel");
    let busy = engine.run(&template, RunOptions::new(root.join("busy")));
    let cancel = CancellationToken::new();
    let mut options = RunOptions::new(root.join("queued"));
    options.cancel = cancel.clone();
    let queued = engine.run(&template, options);
    let canceller = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    };
    let (busy, queued, ()) = tokio::join!(busy, queued, canceller);
    assert_eq!(busy.run_state, RunState::Succeeded);
    assert_eq!(queued.run_state, RunState::Canceled);
    assert_eq!(queued.run_sub_state, RunSubState::Queued);
    assert!(
        queued.message.contains("canceled while queued"),
        "{}",
        queued.message
    );
    let provisions = host
        .calls()
        .iter()
        .filter(|c| format!("{c:?}").starts_with("Provision"))
        .count();
    assert_eq!(provisions, 1, "only the busy run provisioned a VM");
    let _ = std::fs::remove_dir_all(root);
}

#[cfg(feature = "qemu")]
#[test]
fn the_qemu_host_tells_the_engine_how_big_its_vms_are() {
    use imagebuilder_core::host::BuildHost;
    use imagebuilder_core::template::model::VmProfile;
    use imagebuilder_drivers::qemu::{QemuBuildHost, QemuConfig, VmShape};

    let fixed = QemuBuildHost::new(QemuConfig::default().with_shape(VmShape {
        cpus: 1,
        memory_mib: 768,
    }));
    assert_eq!(fixed.vm_memory_mib(&VmProfile::default()), Some(768));
    let sized = QemuBuildHost::new(QemuConfig::default());
    let unknown = VmProfile {
        vm_size: "Standard_Nonexistent".into(),
        ..VmProfile::default()
    };
    assert_eq!(
        sized.vm_memory_mib(&unknown),
        None,
        "unknown sizes are left to the engine"
    );
    let known = VmProfile {
        vm_size: "Standard_D1_v2".into(),
        ..VmProfile::default()
    };
    let mib = sized.vm_memory_mib(&known).unwrap();
    assert!(
        (512..=3584).contains(&mib),
        "Standard_D1_v2 is 3.5 GiB, bounded by the machine: {mib}"
    );
}
