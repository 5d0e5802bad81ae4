//! The engine on the mock host: every path of a run, with cleanup checked after each.
#![cfg(feature = "mock")]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagebuilder_core::distribute::InMemoryTargets;
use imagebuilder_core::engine::{BuildEvent, Engine, RunOptions, RunReport};
use imagebuilder_core::run::{RunState, RunSubState};
use imagebuilder_core::source::SourceResolver;
use imagebuilder_core::template::{parse_value, ImageTemplate, ParseOptions};
use imagebuilder_drivers::mock::{MockBuildHost, MockCall, MockOp, MockResponse};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// A template with two customizers, one validator and three targets.
fn template_json() -> Value {
    json!({
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2025-10-01",
        "name": "engine-test",
        "location": "local",
        "properties": {
            "source": {"type": "DiskImage", "uri": "file:///images/base.qcow2"},
            "customize": [
                {"type": "Shell", "name": "packages", "inline": ["sudo apt-get install -y nginx", "echo done"]},
                {"type": "Shell", "name": "config", "inline": ["sudo systemctl enable nginx"]}
            ],
            "validate": {"inVMValidations": [{"type": "Shell", "name": "check", "inline": ["systemctl is-enabled nginx"]}]},
            "distribute": [
                {"type": "VHD", "runOutputName": "vhd"},
                {"type": "ManagedImage", "runOutputName": "managed", "location": "local",
                 "imageId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/web"},
                {"type": "SharedImage", "runOutputName": "gallery",
                 "galleryImageId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/web"}
            ]
        }
    })
}

fn template(edit: impl FnOnce(&mut Value)) -> ImageTemplate {
    let mut doc = template_json();
    edit(&mut doc);
    let parsed = parse_value(&doc, &ParseOptions::default()).unwrap_or_else(|d| panic!("{d:?}"));
    parsed.templates.into_iter().next().unwrap()
}

struct Harness {
    host: MockBuildHost,
    targets: InMemoryTargets,
    engine: Engine,
    dir: PathBuf,
    events: Arc<Mutex<Vec<BuildEvent>>>,
}

impl Harness {
    fn new(test: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("engine_mock")
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        let host = MockBuildHost::new();
        let targets = InMemoryTargets::new();
        let engine = Engine::new(
            Arc::new(host.clone()),
            Arc::new(SourceResolver::default()),
            Arc::new(targets.clone()),
        );
        Self {
            host,
            targets,
            engine,
            dir,
            events: Arc::default(),
        }
    }

    fn options(&self) -> RunOptions {
        let mut options = RunOptions::new(&self.dir);
        options.artifacts_dir = self.dir.join("artifacts");
        options.log_path = Some(self.dir.join("customization.log"));
        let events = self.events.clone();
        options.events = Arc::new(move |e: BuildEvent| events.lock().unwrap().push(e));
        options
    }

    async fn run(&self, template: &ImageTemplate) -> RunReport {
        self.engine.run(template, self.options()).await
    }

    fn provisions(&self) -> usize {
        self.host
            .calls()
            .iter()
            .filter(|c| matches!(c, MockCall::Provision { .. }))
            .count()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("customization.log")).unwrap_or_default()
    }

    /// Nothing transient is left: no VM alive, no work dir.
    fn assert_clean(&self) {
        assert_eq!(self.host.live_vms(), Vec::<String>::new(), "VMs left alive");
        assert!(
            !self.dir.join("work").exists(),
            "the work dir was left behind"
        );
    }
}

#[tokio::test]
async fn a_successful_run_publishes_every_target_and_leaves_nothing() {
    let h = Harness::new("success");
    let report = h.run(&template(|_| {})).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Succeeded, RunSubState::Distributing),
        "{}",
        report.message
    );
    let mut names: Vec<&str> = report
        .outputs
        .iter()
        .map(|o| o.run_output_name.as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["gallery", "managed", "vhd"]);
    // One capture, the same bytes for every target.
    let vhd = h.targets.published("vhd").unwrap();
    assert_eq!(h.targets.published("gallery").unwrap(), vhd);
    assert!(String::from_utf8_lossy(&vhd).starts_with("mock disk from file:///images/base.qcow2"));
    assert!(report
        .outputs
        .iter()
        .all(|o| o.sha256 == report.outputs[0].sha256));
    // A build VM and a validation VM, both destroyed.
    let purposes: Vec<String> = h
        .host
        .calls()
        .iter()
        .filter_map(|c| match c {
            MockCall::Provision { purpose, .. } => Some(format!("{purpose:?}")),
            _ => None,
        })
        .collect();
    assert_eq!(purposes, ["Build", "Validation"]);
    h.assert_clean();
    // Customizers ran in order, then generalize, all in the build VM.
    let commands = h.host.commands();
    assert!(
        commands.iter().any(|c| c.contains("cloud-init clean")),
        "generalize ran: {commands:?}"
    );
    let log = h.log();
    assert!(
        log.contains("starting Shell packages") && log.contains("starting Generalize"),
        "{log}"
    );
}

#[tokio::test]
async fn events_report_states_steps_and_bytes() {
    let h = Harness::new("events");
    h.host
        .on_exec("echo done", MockResponse::stdout_line("installed nginx"));
    h.run(&template(|_| {})).await;
    let events = h.events.lock().unwrap().clone();
    let states: Vec<RunSubState> = events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::StateChanged {
                run_sub_state,
                run_state: RunState::Running,
            } => Some(*run_sub_state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            RunSubState::Building,
            RunSubState::Customizing,
            RunSubState::Validating,
            RunSubState::Distributing
        ]
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, BuildEvent::GuestOutput { line, .. } if line == "installed nginx")));
    let finished_steps = events
        .iter()
        .filter(|e| matches!(e, BuildEvent::StepFinished { error: None, .. }))
        .count();
    assert_eq!(
        finished_steps, 4,
        "two customizers, generalize, one validator"
    );
    assert!(events.iter().any(|e| matches!(e, BuildEvent::BytesDistributed { run_output_name, done, total } if run_output_name == "vhd" && done == total)));
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["event"], "stateChanged");
}

#[tokio::test]
async fn a_failing_customizer_fails_the_run_and_cleans_up() {
    let h = Harness::new("customizer_cleanup");
    h.host.on_exec(
        "apt-get install",
        MockResponse::exit(100).stderr("E: no such package"),
    );
    let report = h.run(&template(|_| {})).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Failed, RunSubState::Customizing)
    );
    assert!(
        report
            .message
            .contains("Shell 'packages' exited with code 100"),
        "{}",
        report.message
    );
    assert!(
        !h.host
            .commands()
            .iter()
            .any(|c| c.contains("systemctl enable")),
        "later steps did not run"
    );
    assert_eq!(h.targets.names(), Vec::<String>::new(), "nothing published");
    assert_eq!(report.kept_vm, None);
    assert!(
        h.log().contains("E: no such package"),
        "guest stderr is in the log"
    );
    h.assert_clean();
}

#[tokio::test]
async fn abort_keeps_the_build_vm_and_says_how_to_reach_it() {
    let h = Harness::new("customizer_abort");
    h.host.on_exec("apt-get install", MockResponse::exit(1));
    let t = template(|d| d["properties"]["errorHandling"] = json!({"onCustomizerError": "abort"}));
    let report = h.run(&t).await;
    assert_eq!(report.run_state, RunState::Failed);
    let kept = report.kept_vm.expect("the VM was kept");
    assert!(kept.how.contains("-build"), "{}", kept.how);
    assert_eq!(h.host.kept_vms().len(), 1);
    assert_eq!(h.host.live_vms(), Vec::<String>::new());
    assert!(h
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, BuildEvent::VmKept { .. })));
}

#[tokio::test]
async fn a_panicking_customizer_fails_the_run_and_cleans_up() {
    let h = Harness::new("panic");
    h.host.on_exec("systemctl enable", MockResponse::panics());
    let report = h.run(&template(|_| {})).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Failed, RunSubState::Customizing)
    );
    assert!(report.message.contains("panicked"), "{}", report.message);
    h.assert_clean();
}

#[tokio::test(start_paused = true)]
async fn the_build_timeout_covers_every_phase() {
    // Time is paused and jumps ahead while the run waits on the slow validator.
    let h = Harness::new("timeout");
    h.host.on_exec(
        "systemctl is-enabled",
        MockResponse::exit(0).after(Duration::from_secs(3600)),
    );
    let t = template(|d| d["properties"]["buildTimeoutInMinutes"] = json!(6));
    let started = tokio::time::Instant::now();
    let report = h.run(&t).await;
    assert_eq!(
        started.elapsed().as_secs() / 60,
        6,
        "the run ended at the deadline"
    );
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Failed, RunSubState::Validating)
    );
    assert!(
        report.message.contains("buildTimeoutInMinutes (6 minutes)"),
        "{}",
        report.message
    );
    h.assert_clean();
}

/// Cancels the run as soon as it enters `phase`; `slow` makes some operation take long.
async fn cancel_in(phase: RunSubState, test: &str, slow: impl FnOnce(&Harness)) {
    let h = Harness::new(test);
    slow(&h);
    let mut options = h.options();
    let cancel = CancellationToken::new();
    options.cancel = cancel.clone();
    let events = h.events.clone();
    options.events = Arc::new(move |e: BuildEvent| {
        if matches!(e, BuildEvent::StateChanged { run_sub_state, run_state: RunState::Running } if run_sub_state == phase)
        {
            cancel.cancel();
        }
        events.lock().unwrap().push(e);
    });
    let t = template(|d| d["properties"]["optimize"] = json!({"vmBoot": {"state": "Enabled"}}));
    let report = tokio::time::timeout(Duration::from_secs(30), h.engine.run(&t, options))
        .await
        .expect("cancel is prompt");
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Canceled, phase),
        "{}",
        report.message
    );
    let states: Vec<RunState> = h
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            BuildEvent::StateChanged { run_state, .. } => Some(*run_state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states[states.len() - 2..],
        [RunState::Canceling, RunState::Canceled]
    );
    h.assert_clean();
}

#[tokio::test]
async fn cancel_while_building() {
    cancel_in(RunSubState::Building, "cancel_building", |h| {
        h.host
            .delay(MockOp::ProvisionBuild, Duration::from_secs(600))
    })
    .await;
}

#[tokio::test]
async fn cancel_while_customizing() {
    cancel_in(RunSubState::Customizing, "cancel_customizing", |h| {
        h.host.delay(MockOp::Exec, Duration::from_secs(600))
    })
    .await;
}

#[tokio::test]
async fn cancel_while_optimizing() {
    cancel_in(RunSubState::Optimizing, "cancel_optimizing", |_| {}).await;
}

#[tokio::test]
async fn cancel_while_validating() {
    cancel_in(RunSubState::Validating, "cancel_validating", |h| {
        h.host
            .delay(MockOp::ProvisionValidation, Duration::from_secs(600))
    })
    .await;
}

#[tokio::test]
async fn cancel_while_distributing() {
    cancel_in(RunSubState::Distributing, "cancel_distributing", |h| {
        h.targets.delay("gallery", Duration::from_secs(600))
    })
    .await;
}

#[tokio::test]
async fn a_cancel_during_distribution_keeps_the_published_targets_in_the_report() {
    let h = Harness::new("cancel_after_one_target");
    h.targets.delay("gallery", Duration::from_secs(600));
    let mut options = h.options();
    let cancel = options.cancel.clone();
    // Cancel once the two quick targets have published; the gallery is still writing.
    let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    options.events = Arc::new(move |e: BuildEvent| {
        if matches!(&e, BuildEvent::TargetFinished { error: None, .. })
            && finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 2
        {
            cancel.cancel();
        }
    });
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        h.engine.run(&template(|_| {}), options),
    )
    .await
    .expect("cancel is prompt");
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Canceled, RunSubState::Distributing),
        "{}",
        report.message
    );
    let reported: Vec<&str> = report
        .outputs
        .iter()
        .map(|o| o.run_output_name.as_str())
        .collect();
    assert_eq!(
        reported,
        ["vhd", "managed"],
        "the targets published before the cancel are reported, in the template's order"
    );
    let mut published = h.targets.names();
    published.sort();
    assert_eq!(
        published,
        ["managed", "vhd"],
        "and nothing else was published"
    );
    h.assert_clean();
}

#[tokio::test]
async fn cancel_before_start_ends_canceled_in_queued() {
    let h = Harness::new("cancel_queued");
    let options = h.options();
    options.cancel.cancel();
    let report = h.engine.run(&template(|_| {}), options).await;
    assert_eq!(report.run_state, RunState::Canceled);
    assert_eq!(h.provisions(), 0);
    h.assert_clean();
}

#[tokio::test]
async fn failed_validation_stops_distribution_by_default() {
    let h = Harness::new("validation_stop");
    h.host.on_exec(
        "systemctl is-enabled",
        MockResponse::exit(1).stdout("disabled"),
    );
    let report = h.run(&template(|_| {})).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Failed, RunSubState::Validating)
    );
    assert_eq!(h.targets.names(), Vec::<String>::new());
    h.assert_clean();
}

#[tokio::test]
async fn failed_validation_distributes_with_continue_and_still_fails() {
    let h = Harness::new("validation_continue");
    h.host
        .on_exec("systemctl is-enabled", MockResponse::exit(1));
    let t = template(|d| d["properties"]["validate"]["continueDistributeOnFailure"] = json!(true));
    let report = h.run(&t).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Failed, RunSubState::Distributing)
    );
    assert_eq!(report.outputs.len(), 3);
    assert_eq!(h.targets.names().len(), 3);
    h.assert_clean();
}

#[tokio::test]
async fn one_failing_target_of_three_is_partial_success() {
    let h = Harness::new("partial");
    h.targets.fail("managed");
    let report = h.run(&template(|_| {})).await;
    assert_eq!(report.run_state, RunState::PartiallySucceeded);
    assert_eq!(report.outputs.len(), 2);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].run_output_name, "managed");
    assert!(
        report.message.contains("1 of 3 targets failed"),
        "{}",
        report.message
    );
    h.assert_clean();
}

#[tokio::test]
async fn every_target_failing_fails_the_run() {
    let h = Harness::new("all_fail");
    for name in ["vhd", "managed", "gallery"] {
        h.targets.fail(name);
    }
    let report = h.run(&template(|_| {})).await;
    assert_eq!(report.run_state, RunState::Failed);
    h.assert_clean();
}

#[tokio::test]
async fn a_checksum_mismatch_fails_before_any_vm_starts() {
    let h = Harness::new("checksum");
    std::fs::create_dir_all(&h.dir).unwrap();
    let script = h.dir.join("setup.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let uri = format!("file://{}", script.display());
    let wrong = "0".repeat(64);
    let t = template(|d| {
        d["properties"]["customize"] =
            json!([{"type": "Shell", "scriptUri": uri, "sha256Checksum": wrong}]);
    });
    let report = h.run(&t).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Failed, RunSubState::Building)
    );
    assert!(
        report.message.contains("sha256 mismatch"),
        "{}",
        report.message
    );
    assert!(
        report.message.contains(&wrong),
        "names the expected digest: {}",
        report.message
    );
    assert_eq!(h.provisions(), 0, "no VM was started");
    h.assert_clean();
}

#[tokio::test]
async fn staged_scripts_are_uploaded_and_run() {
    let h = Harness::new("script_uri");
    std::fs::create_dir_all(&h.dir).unwrap();
    let script = h.dir.join("setup.sh");
    std::fs::write(&script, "#!/bin/sh\nmake install\n").unwrap();
    let uri = format!("file://{}", script.display());
    h.host.on_exec("make install", MockResponse::exit(2));
    let t =
        template(|d| d["properties"]["customize"] = json!([{"type": "Shell", "scriptUri": uri}]));
    let report = h.run(&t).await;
    assert_eq!(
        report.run_state,
        RunState::Failed,
        "the script's failing line fails the step"
    );
    let uploaded = h.host.calls().into_iter().find_map(|c| match c {
        MockCall::Upload { contents, .. } => Some(contents),
        _ => None,
    });
    assert_eq!(uploaded.as_deref(), Some(&b"#!/bin/sh\nmake install\n"[..]));
}

#[tokio::test]
async fn a_deprovisioning_script_replaces_the_default_generalize() {
    let h = Harness::new("deprovision_override");
    std::fs::create_dir_all(&h.dir).unwrap();
    let script = h.dir.join("deprovision.sh");
    std::fs::write(&script, "echo custom\n").unwrap();
    let uri = format!("file://{}", script.display());
    let t = template(|d| {
        d["properties"]["customize"] = json!([{"type": "File", "sourceUri": uri, "destination": "/tmp/DeprovisioningScript.sh"}]);
    });
    let report = h.run(&t).await;
    assert_eq!(report.run_state, RunState::Succeeded, "{}", report.message);
    let commands = h.host.commands();
    assert!(
        commands
            .iter()
            .any(|c| c == "sudo sh /tmp/DeprovisioningScript.sh"),
        "{commands:?}"
    );
    assert!(
        !commands.iter().any(|c| c.contains("cloud-init clean")),
        "the default did not run"
    );
}

#[tokio::test]
async fn source_validation_only_validates_the_source_and_publishes_nothing() {
    let h = Harness::new("source_validation_only");
    let t = template(|d| d["properties"]["validate"]["sourceValidationOnly"] = json!(true));
    let report = h.run(&t).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Succeeded, RunSubState::Validating),
        "{}",
        report.message
    );
    let base_disks: Vec<String> = h
        .host
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            MockCall::Provision {
                base_disk, purpose, ..
            } => Some(format!("{purpose:?} {}", base_disk.location)),
            _ => None,
        })
        .collect();
    assert_eq!(base_disks, ["Validation file:///images/base.qcow2"]);
    assert_eq!(h.targets.names(), Vec::<String>::new());
    h.assert_clean();
}

#[tokio::test]
async fn a_failing_destroy_is_reported_and_does_not_hide_the_result() {
    let h = Harness::new("destroy_fails");
    h.host.fail(MockOp::Destroy, "hypervisor unreachable");
    let report = h.run(&template(|_| {})).await;
    assert_eq!(report.run_state, RunState::Succeeded);
    assert!(h.log().contains("hypervisor unreachable"), "{}", h.log());
    assert_eq!(h.host.live_vms(), Vec::<String>::new());
}

#[tokio::test]
async fn hosts_refuse_what_they_cannot_build_before_starting() {
    let mut caps = imagebuilder_core::host::Capabilities::all();
    caps.uefi = false;
    let h = Harness::new("capabilities");
    let host = h.host.clone().with_capabilities(caps);
    let engine = Engine::new(
        Arc::new(host),
        Arc::new(SourceResolver::default()),
        Arc::new(h.targets.clone()),
    );
    let t = template(|d| d["properties"]["source"]["hyperVGeneration"] = json!("V2"));
    let report = engine.run(&t, h.options()).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Failed, RunSubState::Building)
    );
    assert!(
        report.message.contains("cannot boot Gen2 (UEFI) images"),
        "{}",
        report.message
    );
    assert_eq!(h.provisions(), 0);
}

#[tokio::test]
async fn dropping_a_run_midway_still_destroys_its_vm() {
    let h = Harness::new("dropped");
    h.host.on_exec(
        "apt-get install",
        MockResponse::exit(0).after(Duration::from_secs(600)),
    );
    let t = template(|_| {});
    let dropped = tokio::time::timeout(Duration::from_millis(300), h.run(&t)).await;
    assert!(dropped.is_err(), "the run was still going when dropped");
    assert_eq!(h.provisions(), 1);
    // Cleanup runs in the background after the drop.
    for _ in 0..100 {
        if h.host.live_vms().is_empty() && !h.dir.join("work").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.assert_clean();
}

#[tokio::test]
async fn a_linux_restart_step_restarts_the_guest_with_its_default_command() {
    let h = Harness::new("restart");
    let t = template(|d| {
        d["properties"]["customize"] = json!([
            {"type": "Shell", "inline": ["echo before"]},
            {"type": "Restart", "restartCheckCommand": "test -f /tmp/booted", "restartTimeout": "2m"},
            {"type": "Shell", "inline": ["echo after"]}
        ]);
    });
    let report = h.run(&t).await;
    assert_eq!(report.run_state, RunState::Succeeded, "{}", report.message);
    let restarts: Vec<String> = h
        .host
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            MockCall::Restart { command, .. } => Some(command),
            _ => None,
        })
        .collect();
    assert_eq!(restarts, ["sudo reboot"]);
}

#[tokio::test]
async fn a_host_that_cannot_restart_refuses_restart_steps_up_front() {
    let mut caps = imagebuilder_core::host::Capabilities::all();
    caps.restart = false;
    let h = Harness::new("no_restart");
    let engine = Engine::new(
        Arc::new(h.host.clone().with_capabilities(caps)),
        Arc::new(SourceResolver::default()),
        Arc::new(h.targets.clone()),
    );
    let t = template(|d| d["properties"]["customize"] = json!([{"type": "Restart"}]));
    let report = engine.run(&t, h.options()).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Failed, RunSubState::Building)
    );
    assert!(
        report.message.contains("cannot restart a guest"),
        "{}",
        report.message
    );
    assert_eq!(h.provisions(), 0);
}

/// A target whose code panics.
struct PanickingTarget;

#[async_trait::async_trait]
impl imagebuilder_core::distribute::Distributor for PanickingTarget {
    fn run_output_name(&self) -> &str {
        "panics"
    }

    async fn distribute(
        &self,
        _: &imagebuilder_core::distribute::CapturedImage,
        _: &imagebuilder_core::distribute::DistributeContext<'_>,
    ) -> Result<imagebuilder_core::run::RunOutput, imagebuilder_core::distribute::DistributeError>
    {
        panic!("a distributor bug")
    }
}

#[tokio::test]
async fn a_panicking_distributor_fails_the_run_in_distributing() {
    use imagebuilder_core::plan::TemplateBuilder;
    use imagebuilder_core::template::model::{DiskImageSource, SourceSpec};
    let h = Harness::new("panicking_distributor");
    let template = TemplateBuilder::new("panics")
        .source(SourceSpec::DiskImage(DiskImageSource {
            uri: "file:///images/base.qcow2".into(),
            format: None,
            sha256_checksum: String::new(),
            os_type: None,
            hyper_v_generation: None,
            security_type: None,
        }))
        .shell(["true"])
        .distribute_to(PanickingTarget)
        .build();
    let report = h.engine.run(&template, h.options()).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Failed, RunSubState::Distributing)
    );
    assert!(
        report.message.contains("a distributor bug"),
        "{}",
        report.message
    );
    h.assert_clean();
}

#[tokio::test]
async fn validator_checksums_are_verified_before_any_vm_starts() {
    let h = Harness::new("validator_checksum");
    std::fs::create_dir_all(&h.dir).unwrap();
    let script = h.dir.join("check.sh");
    std::fs::write(&script, "true\n").unwrap();
    let uri = format!("file://{}", script.display());
    let t = template(|d| {
        d["properties"]["validate"]["inVMValidations"] =
            json!([{"type": "Shell", "scriptUri": uri, "sha256Checksum": "1".repeat(64)}]);
    });
    let report = h.run(&t).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Failed, RunSubState::Building)
    );
    assert_eq!(h.provisions(), 0);
}
