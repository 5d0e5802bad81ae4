//! The libvirt host on a real daemon (`qemu:///system`, domain type `qemu` under TCG here),
//! which the test command installs and starts (`scripts/libvirt-daemon.sh`) and names in
//! IMAGEBUILDER_TEST_LIBVIRT_URI: the host contract checks, then whole builds through the
//! engine, with a leak check (no domain, volume, lease or work dir) after each.
//!
//! The same checks cannot run on `test:///default`: that driver runs no guest and cannot
//! stream volumes. Its part (XML, pool, volumes, removal, reconciliation, a clean failure)
//! is tested by the unit tests in `src/libvirt/tests.rs`.
#![cfg(feature = "libvirt")]

mod capture_check;
mod libvirt_support;

use std::sync::Arc;
use std::time::Duration;

use capture_check::{assert_capture_generalized, CapturedRoot};
use imagebuilder_core::engine::{BuildEvent, Engine};
use imagebuilder_core::host::{BuildHost, ExecRequest, OutputLine, ProvisionOptions, VmPurpose};
use imagebuilder_core::run::{RunState, RunSubState};
use imagebuilder_core::template::model::HyperVGeneration;
use imagebuilder_core::testkit::host as checks;
use libvirt_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn exec_reports_exit_codes() {
    let Some(f) = Fixture::gen1("exec_reports_exit_codes") else {
        return;
    };
    checks::exec_reports_exit_codes(&f.host, &f.host_context()).await;
    f.assert_no_leaks(&testkit_needle("exec_reports_exit_codes"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_streams_output() {
    let Some(f) = Fixture::gen1("exec_streams_output") else {
        return;
    };
    checks::exec_streams_output(&f.host, &f.host_context()).await;
    f.assert_no_leaks(&testkit_needle("exec_streams_output"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_reads_back() {
    let Some(f) = Fixture::gen1("upload_reads_back") else {
        return;
    };
    checks::upload_reads_back(&f.host, &f.host_context()).await;
    f.assert_no_leaks(&testkit_needle("upload_reads_back"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn capture_writes_a_disk_and_keeps_the_base() {
    let Some(f) = Fixture::gen1("capture_keeps_base") else {
        return;
    };
    checks::capture_writes_a_disk_and_keeps_the_base(&f.host, &f.host_context()).await;
    f.assert_no_leaks(&testkit_needle("capture_writes_a_disk"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_comes_back() {
    let Some(f) = Fixture::gen1("restart_comes_back") else {
        return;
    };
    checks::restart_comes_back(&f.host, &f.host_context()).await;
    f.assert_no_leaks(&testkit_needle("restart_comes_back"))
        .await;
}

/// Gen2: OVMF from the hypervisor host with the VM's own nvram volume; the serial console
/// reaches the run's log through libvirt.
#[tokio::test(flavor = "multi_thread")]
async fn a_gen2_vm_boots_with_its_own_nvram_and_logs_its_console() {
    let Some(f) = Fixture::new("gen2_boot", HyperVGeneration::V2) else {
        return;
    };
    let dir = f.dir.join("vm");
    std::fs::create_dir_all(&dir).unwrap();
    let console = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let lines = console.clone();
    let options = ProvisionOptions {
        vm_id: format!("{}-vm", f.name),
        purpose: VmPurpose::Build,
        base_disk: f.base_disk(),
        vm_profile: Default::default(),
        work_dir: dir,
        console: Arc::new(move |l: OutputLine<'_>| lines.lock().unwrap().push(l.text.to_owned())),
    };
    let vm = match f.host.provision(options).await {
        Ok(vm) => vm,
        Err(e) => panic!("{}", imagebuilder_core::error_chain(&e)),
    };
    let nvram = std::process::Command::new("virsh")
        .args(["-q", "-c", &f.uri, "vol-list", "--pool", POOL])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&nvram.stdout)
            .contains(&format!("imagebuilder-{}-vm-nvram", f.name)),
        "the VM has its own nvram volume"
    );
    let efi = vm
        .guest()
        .exec(
            &ExecRequest::new("test -d /sys/firmware/efi"),
            &|_: OutputLine<'_>| {},
        )
        .await
        .unwrap();
    assert_eq!(efi.exit_code, 0, "the guest booted with UEFI");
    vm.destroy().await.unwrap();
    assert!(
        !console.lock().unwrap().is_empty(),
        "the serial console reached the log"
    );
    f.assert_no_leaks(&f.name).await;
}

/// A whole build: Shell and File customizers, generalize, capture, then a validation VM
/// booted from the capture finds the customization; the capture holds nothing of the build
/// VM's identity.
#[tokio::test(flavor = "multi_thread")]
async fn a_gen1_build_customizes_captures_and_validates() {
    let Some(f) = Fixture::gen1("full_build") else {
        return;
    };
    let payload = f.dir.join("payload.txt");
    std::fs::write(&payload, "payload from the host\n").unwrap();
    let template = f.template(|t| {
        t["properties"]["customize"] = json!([
            {"type": "Shell", "name": "marker", "inline": ["echo customized | sudo tee /etc/imagebuilder-marker"]},
            {"type": "File", "name": "payload", "sourceUri": format!("file://{}", payload.display()), "destination": "/tmp/payload.txt"},
            {"type": "Shell", "name": "keep-payload", "inline": ["sudo cp /tmp/payload.txt /etc/payload.txt"]}
        ]);
        t["properties"]["validate"] = json!({"inVMValidations": [
            {"type": "Shell", "name": "marker-present", "inline": [
                "grep -q customized /etc/imagebuilder-marker",
                "grep -q 'payload from the host' /etc/payload.txt"
            ]}
        ]});
    });
    let engine = Engine::new(Arc::new(f.host.clone()), f.source(), f.capture_targets());
    let started = std::time::Instant::now();
    let report = engine.run(&template, f.run_options()).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Succeeded, RunSubState::Distributing),
        "{}\n{}",
        report.message,
        f.log()
    );
    eprintln!("libvirt build took {:?}", started.elapsed());
    assert_eq!(
        backing_file(&f.captured_path()),
        None,
        "the capture stands alone"
    );
    assert_capture_generalized(&CapturedRoot::open(&f.captured_path(), &f.dir));
    f.assert_no_leaks(&f.name).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_customizer_cleans_up_everything() {
    let Some(f) = Fixture::gen1("failing_cleanup") else {
        return;
    };
    let template = f.template(|t| {
        t["properties"]["customize"] =
            json!([{"type": "Shell", "inline": ["echo about to fail", "exit 7"]}])
    });
    let engine = Engine::new(Arc::new(f.host.clone()), f.source(), f.capture_targets());
    let report = engine.run(&template, f.run_options()).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Failed, RunSubState::Customizing),
        "{}",
        report.message
    );
    assert!(
        report.message.contains("exited with code 7"),
        "{}",
        report.message
    );
    assert!(
        f.log().contains("about to fail"),
        "guest output reaches the log"
    );
    f.assert_no_leaks(&f.name).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_during_customization_leaves_nothing() {
    let Some(f) = Fixture::gen1("cancel_customizing") else {
        return;
    };
    let template = f.template(|t| {
        t["properties"]["customize"] =
            json!([{"type": "Shell", "inline": ["echo started", "sleep 3600"]}])
    });
    let engine = Engine::new(Arc::new(f.host.clone()), f.source(), f.capture_targets());
    let mut options = f.run_options();
    let cancel = options.cancel.clone();
    options.events = Arc::new(move |e: BuildEvent| {
        if matches!(&e, BuildEvent::GuestOutput { line, .. } if line == "started") {
            cancel.cancel();
        }
    });
    let report = tokio::time::timeout(Duration::from_secs(300), engine.run(&template, options))
        .await
        .expect("cancel is prompt");
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Canceled, RunSubState::Customizing),
        "{}",
        report.message
    );
    f.assert_no_leaks(&f.name).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_while_booting_leaves_nothing() {
    let Some(f) = Fixture::gen1("cancel_booting") else {
        return;
    };
    let template = f.template(|t| {
        t["properties"]["customize"] = json!([{"type": "Shell", "inline": ["true"]}])
    });
    let engine = Engine::new(Arc::new(f.host.clone()), f.source(), f.capture_targets());
    let options = f.run_options();
    let cancel = options.cancel.clone();
    // Mid-provision: volumes made, the domain booting, SSH not answering yet.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        cancel.cancel();
    });
    let report = engine.run(&template, options).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Canceled, RunSubState::Building),
        "{}",
        report.message
    );
    f.assert_no_leaks(&f.name).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_keeps_the_vm_and_its_cleanup_command_removes_it() {
    let Some(f) = Fixture::gen1("failing_abort") else {
        return;
    };
    let template = f.template(|t| {
        t["properties"]["customize"] = json!([{"type": "Shell", "inline": ["exit 1"]}]);
        t["properties"]["errorHandling"] = json!({"onCustomizerError": "abort"});
    });
    let engine = Engine::new(Arc::new(f.host.clone()), f.source(), f.capture_targets());
    let report = engine.run(&template, f.run_options()).await;
    assert_eq!(report.run_state, RunState::Failed);
    let kept = report.kept_vm.expect("the VM is kept");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} -o BatchMode=yes -o ConnectTimeout=20 true",
            kept.how
        ))
        .status()
        .unwrap();
    assert!(status.success(), "ssh to the kept VM: {}", kept.how);
    // A kept VM is nobody's leftover: reconcile leaves it alone.
    let output = f.host.reconcile().await.unwrap();
    assert!(
        output.foreign.iter().any(|id| id.starts_with(&f.name)),
        "{output:?}"
    );
    let cleanup = std::process::Command::new("sh")
        .arg("-c")
        .arg(&kept.cleanup)
        .status()
        .unwrap();
    assert!(cleanup.success(), "cleanup: {}", kept.cleanup);
    for _ in 0..50 {
        if f.leftovers(&f.name).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(f.leftovers(&f.name), Vec::<String>::new(), "left behind");
}
