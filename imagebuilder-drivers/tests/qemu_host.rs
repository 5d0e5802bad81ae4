//! The QEMU host on real VMs booted from the fixture images (`scripts/build-fixture-images.sh`,
//! run by the test command, which sets IMAGEBUILDER_FIXTURE_IMAGES): the host contract checks,
//! then whole builds through the engine with leak checks after each.
#![cfg(feature = "qemu")]

mod qemu_support;

use std::sync::Arc;
use std::time::Duration;

use imagebuilder_core::engine::Engine;
use imagebuilder_core::host::{BuildHost, OutputLine, ProvisionOptions, VmPurpose};
use imagebuilder_core::run::{RunState, RunSubState};
use imagebuilder_core::template::model::HyperVGeneration;
use imagebuilder_core::testkit::host as checks;
use qemu_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn exec_reports_exit_codes() {
    let Some(f) = Fixture::gen1("exec_reports_exit_codes") else {
        return;
    };
    checks::exec_reports_exit_codes(&f.host, &f.host_context()).await;
    f.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_streams_output() {
    let Some(f) = Fixture::gen1("exec_streams_output") else {
        return;
    };
    checks::exec_streams_output(&f.host, &f.host_context()).await;
    f.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_reads_back() {
    let Some(f) = Fixture::gen1("upload_reads_back") else {
        return;
    };
    checks::upload_reads_back(&f.host, &f.host_context()).await;
    f.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn capture_writes_a_disk_and_keeps_the_base() {
    let Some(f) = Fixture::gen1("capture_keeps_base") else {
        return;
    };
    checks::capture_writes_a_disk_and_keeps_the_base(&f.host, &f.host_context()).await;
    f.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_comes_back() {
    let Some(f) = Fixture::gen1("restart_comes_back") else {
        return;
    };
    checks::restart_comes_back(&f.host, &f.host_context()).await;
    f.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shrinking_os_disk_is_refused_before_boot() {
    let Some(f) = Fixture::gen1("shrink") else {
        return;
    };
    let profile = imagebuilder_core::template::model::VmProfile {
        os_disk_size_gb: 1,
        ..Default::default()
    };
    let dir = f.dir.join("vm");
    std::fs::create_dir_all(&dir).unwrap();
    let options = ProvisionOptions {
        vm_id: f.vm_id("shrink"),
        purpose: VmPurpose::Build,
        base_disk: f.base_disk(),
        vm_profile: profile,
        work_dir: dir,
        console: Arc::new(|_: OutputLine<'_>| {}),
    };
    // The fixture is larger than 1 GiB only if built so; grow-only is checked either way.
    match f.host.provision(options).await {
        Err(e) => assert!(
            imagebuilder_core::error_chain(&e).contains("can only grow"),
            "{e}"
        ),
        Ok(vm) => {
            let size = f.virtual_size();
            assert!(size <= 1 << 30, "a {size}-byte base was shrunk");
            vm.destroy().await.unwrap();
        }
    }
    f.assert_no_leaks();
}

/// A whole build on `generation`, its output checked (`qemu_support::full_build`).
async fn full_build(generation: HyperVGeneration) {
    let name = format!("full_build_{generation:?}");
    let Some(f) = Fixture::new(&name, generation) else {
        return;
    };
    qemu_support::full_build(&f, &[], "5m").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gen1_build_customizes_generalizes_and_captures() {
    full_build(HyperVGeneration::V1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gen2_build_customizes_generalizes_and_captures() {
    full_build(HyperVGeneration::V2).await;
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
        (RunState::Failed, RunSubState::Customizing)
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
    f.assert_no_leaks();
    let leases: Vec<_> = std::fs::read_dir(f.dir.join("leases"))
        .unwrap()
        .flatten()
        .collect();
    assert!(
        leases.is_empty(),
        "a destroyed VM gives up its lease: {leases:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_keeps_the_vm_reachable_over_ssh() {
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
    // The reported command reaches the VM with the pinned host key.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} -o BatchMode=yes -o ConnectTimeout=20 true",
            kept.how
        ))
        .status()
        .unwrap();
    assert!(status.success(), "ssh to the kept VM: {}", kept.how);
    // A kept VM has no lease: no reconcile takes it away from the person debugging it.
    let found = f.host.reconcile().await.unwrap();
    assert!(found.removed.is_empty(), "{found:?}");
    assert_eq!(f.qemu_processes().len(), 1, "the kept VM still runs");
    // Its isolated network too (slirp4netns), which exits with its QEMU.
    assert_eq!(f.network_helpers().len(), 1, "{:?}", f.network_helpers());
    let cleanup = std::process::Command::new("sh")
        .arg("-c")
        .arg(&kept.cleanup)
        .status()
        .unwrap();
    assert!(cleanup.success(), "cleanup: {}", kept.cleanup);
    f.wait_for_no_leaks().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_build_timeout_stops_a_real_vm() {
    let Some(f) = Fixture::gen1("timeout") else {
        return;
    };
    let template = f.template(|t| {
        t["properties"]["customize"] = json!([{"type": "Shell", "inline": ["sleep 3600"]}])
    });
    let mut template = template;
    template.properties.build_timeout_in_minutes = 1;
    let engine = Engine::new(Arc::new(f.host.clone()), f.source(), f.capture_targets());
    let report = tokio::time::timeout(
        Duration::from_secs(300),
        engine.run(&template, f.run_options()),
    )
    .await
    .expect("the run ends");
    assert_eq!(report.run_state, RunState::Failed);
    assert!(
        report.message.contains("buildTimeoutInMinutes"),
        "{}",
        report.message
    );
    f.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_during_customization_stops_a_real_vm() {
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
    let events = options.events.clone();
    options.events = Arc::new(move |e: imagebuilder_core::engine::BuildEvent| {
        if matches!(&e, imagebuilder_core::engine::BuildEvent::GuestOutput { line, .. } if line == "started")
        {
            cancel.cancel();
        }
        events.emit(e);
    });
    let report = tokio::time::timeout(Duration::from_secs(300), engine.run(&template, options))
        .await
        .expect("cancel is prompt");
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Canceled, RunSubState::Customizing)
    );
    f.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_validation_distributes_only_with_continue() {
    for (continue_on_failure, published) in [(false, false), (true, true)] {
        let name = format!("validation_continue_{continue_on_failure}");
        let Some(f) = Fixture::gen1(&name) else {
            return;
        };
        let template = f.template(|t| {
            t["properties"]["customize"] = json!([{"type": "Shell", "inline": ["true"]}]);
            t["properties"]["validate"] = json!({
                "continueDistributeOnFailure": continue_on_failure,
                "inVMValidations": [{"type": "Shell", "inline": ["test -f /etc/does-not-exist"]}]
            });
        });
        let engine = Engine::new(Arc::new(f.host.clone()), f.source(), f.capture_targets());
        let report = engine.run(&template, f.run_options()).await;
        assert_eq!(report.run_state, RunState::Failed, "{}", report.message);
        assert_eq!(
            f.captured_path().exists(),
            published,
            "continueDistributeOnFailure={continue_on_failure}"
        );
        f.assert_no_leaks();
    }
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
    // Mid-boot: QEMU is running, SSH does not answer yet.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        cancel.cancel();
    });
    let report = engine.run(&template, options).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Canceled, RunSubState::Building),
        "{}",
        report.message
    );
    // The dropped provision killed QEMU (kill_on_drop) without waiting for it to exit;
    // under load the exit can trail the report by a moment.
    f.wait_for_no_leaks().await;
    f.assert_no_leaks();
}

/// Every regular file under `dir`, depth first.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            files.extend(files_under(&entry.path()));
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// While the build VM runs: the one build key is `client_key` in the VM's work dir under the
/// run's work dir, 0600, in a dir only its owner can enter; no other file of the run (logs,
/// artifacts, sockets) holds it, and every file holding any private key is in that dir.
/// Returns a line of the key, to look for after the run.
fn check_the_build_key(
    run_dir: &std::path::Path,
    sockets: &std::path::Path,
) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let files = files_under(run_dir);
    let keys: Vec<_> = files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "client_key"))
        .collect();
    let [key] = keys.as_slice() else {
        return Err(format!("one build key expected: {keys:?}"));
    };
    let vm_dir = key.parent().unwrap();
    if vm_dir.parent() != Some(run_dir.join("work").as_path()) {
        return Err(format!(
            "{} is not in a VM dir of the run's work dir",
            key.display()
        ));
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    if mode(key) != 0o600 {
        return Err(format!("{} has mode {:o}", key.display(), mode(key)));
    }
    if mode(vm_dir) & 0o077 != 0 {
        return Err(format!("{} has mode {:o}", vm_dir.display(), mode(vm_dir)));
    }
    let text = std::fs::read_to_string(key).unwrap();
    if !text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
        return Err(format!("{} is not a private key", key.display()));
    }
    // A line of the private part: the first lines of every ed25519 key file are alike.
    let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let secret = body[body.len() - 2].to_owned();
    for file in files.iter().chain(&files_under(sockets)) {
        if file == *key {
            continue;
        }
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        if contains(&bytes, secret.as_bytes()) {
            return Err(format!("{} holds the build key", file.display()));
        }
        if contains(&bytes, b"PRIVATE KEY") && !file.starts_with(vm_dir) {
            return Err(format!(
                "{} holds a private key outside the VM's dir",
                file.display()
            ));
        }
    }
    Ok(secret)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_build_key_stays_private_in_the_work_dir_and_goes_with_the_run() {
    let Some(f) = Fixture::gen1("build_key") else {
        return;
    };
    let template = f.template(|t| {
        t["properties"]["customize"] =
            json!([{"type": "Shell", "inline": ["echo key-check", "sleep 1"]}])
    });
    let engine = Engine::new(Arc::new(f.host.clone()), f.source(), f.capture_targets());
    let mut options = f.run_options();
    let checked = Arc::new(std::sync::Mutex::new(None));
    let (seen, run_dir, sockets) = (checked.clone(), f.dir.clone(), f.sockets.clone());
    let events = options.events.clone();
    options.events = Arc::new(move |e: imagebuilder_core::engine::BuildEvent| {
        if matches!(&e, imagebuilder_core::engine::BuildEvent::GuestOutput { line, .. } if line == "key-check")
        {
            *seen.lock().unwrap() = Some(check_the_build_key(&run_dir, &sockets));
        }
        events.emit(e);
    });
    let report = engine.run(&template, options).await;
    assert_eq!(report.run_state, RunState::Succeeded, "{}", report.message);
    let secret = checked
        .lock()
        .unwrap()
        .take()
        .expect("the key was checked during the build")
        .unwrap_or_else(|e| panic!("{e}"));
    for file in files_under(&f.dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "{} holds the build key after the run",
            file.display()
        );
        assert!(
            !file.ends_with("client_key"),
            "{} is left after the run",
            file.display()
        );
    }
    f.assert_no_leaks();
}
