//! A whole build through the engine on a stock-style Debian 12 image (systemd, Debian's
//! cloud-init and OpenSSH; `scripts/build-stock-image.sh`, run by the test command, which sets
//! IMAGEBUILDER_STOCK_IMAGES), then the output checked offline and booted as a user would: the
//! build user's removal must hold with real shadow-utils and real cloud-init, not only with the
//! fixture's stand-ins. Its own file so it runs next to the fixture tests, not after them.
#![cfg(feature = "qemu")]

mod capture_check;
mod qemu_support;

use std::sync::Arc;
use std::time::Instant;

use capture_check::{assert_capture_generalized, CapturedRoot};
use imagebuilder_core::engine::Engine;
use imagebuilder_core::run::{RunState, RunSubState};
use qemu_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_stock_debian_build_customizes_generalizes_and_captures() {
    let Some(f) = Fixture::stock_gen1("stock_full_build") else {
        return;
    };
    let started = Instant::now();
    let payload = f.write_file("payload.txt", "payload from the host\n");
    let template = f.template(|t| {
        t["properties"]["customize"] = json!([
            // The image is what it claims: systemd as PID 1, Debian's cloud-init.
            {"type": "Shell", "name": "stock", "inline": [
                "test \"$(cat /proc/1/comm)\" = systemd",
                "dpkg-query -W cloud-init openssh-server",
                "echo customized | sudo tee /etc/imagebuilder-marker",
                "sudo cp /etc/machine-id /var/build-machine-id",
                "sudo cp /etc/ssh/ssh_host_ed25519_key.pub /var/build-host-key.pub",
                "sudo cp ~/.ssh/authorized_keys /var/build-authorized-keys"
            ]},
            {"type": "File", "name": "payload", "sourceUri": format!("file://{}", payload.display()), "destination": "/tmp/payload.txt"},
            {"type": "Shell", "name": "keep-payload", "inline": ["sudo cp /tmp/payload.txt /etc/payload.txt"]},
            {"type": "Restart", "restartCheckCommand": "test -f /etc/imagebuilder-marker", "restartTimeout": "10m"},
            {"type": "Shell", "name": "after-restart", "inline": ["test -f /etc/payload.txt"]}
        ]);
        t["properties"]["validate"] = json!({"inVMValidations": [
            {"type": "Shell", "name": "marker-present", "inline": ["grep -q customized /etc/imagebuilder-marker"]}
        ]});
    });
    let engine = Engine::new(Arc::new(f.host.clone()), f.source(), f.capture_targets());
    let report = engine.run(&template, f.run_options()).await;
    assert_eq!(
        (report.run_state, report.run_sub_state),
        (RunState::Succeeded, RunSubState::Distributing),
        "{}\n{}",
        report.message,
        f.log()
    );
    f.assert_no_leaks();
    eprintln!("stock build: {:?}", started.elapsed());

    let capture = f.captured_image();
    assert_capture_generalized(&CapturedRoot::open(&capture, &f.dir));
    // Boot the capture as a user would: a new VM, a new seed, a new instance, another user.
    let vm = f.boot_as_output_user(&capture, "fresh").await;
    let run = |command: &'static str| run_in(vm.as_ref(), command);
    assert_eq!(
        run("cat /etc/imagebuilder-marker").await,
        (0, "customized".to_owned())
    );
    assert_eq!(
        run("cat /etc/payload.txt").await,
        (0, "payload from the host".to_owned())
    );
    let (_, build_id) = run("cat /var/build-machine-id").await;
    let (_, new_id) = run("cat /etc/machine-id").await;
    assert!(
        !new_id.is_empty() && new_id != build_id,
        "machine-id was regenerated: {build_id} -> {new_id}"
    );
    let (_, build_host_key) = run("cat /var/build-host-key.pub").await;
    assert!(!build_host_key.is_empty(), "the build saw its host key");
    let (_, build_keys) = run("cat /var/build-authorized-keys").await;
    let (_, keys) = run("cat ~/.ssh/authorized_keys").await;
    for key in build_keys.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            !keys.contains(key),
            "the build user's key is still authorized in the image"
        );
    }
    assert_no_build_identity(vm.as_ref(), &build_host_key).await;
    vm.destroy().await.unwrap();
    f.assert_no_leaks();
    eprintln!("stock build and fresh boot: {:?}", started.elapsed());
}
