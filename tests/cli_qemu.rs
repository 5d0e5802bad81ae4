//! The main job's path: `imagebuilder build --host qemu` of the quickstart template on the
//! fixture images, with the embedded default environment, and nothing left running after.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[test]
fn quickstart_builds_on_qemu_and_writes_a_vhd() {
    let Some(images) = std::env::var_os("IMAGEBUILDER_FIXTURE_IMAGES") else {
        eprintln!("skipped: IMAGEBUILDER_FIXTURE_IMAGES is not set; `bash scripts/test.sh` builds the fixture images and sets it");
        return;
    };
    let state = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_qemu")
        .join("state");
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(state.join("images")).unwrap();
    for name in ["debian-12-gen1.qcow2", "debian-12-gen2.qcow2"] {
        std::os::unix::fs::symlink(
            PathBuf::from(&images).join(name),
            state.join("images").join(name),
        )
        .unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_imagebuilder"))
        .args(["build", "--host", "qemu", "--json", "--state-dir"])
        .arg(&state)
        .arg("examples/templates/quickstart.json")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: Value = serde_json::from_str(stdout.lines().last().expect("output"))
        .expect("the last line is the result");
    assert_eq!(
        last["runState"],
        "Succeeded",
        "{last}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("\"step\":{\"kind\":\"Restart\""),
        "the restart step ran"
    );
    let uri = last["outputs"][0]["artifactUri"].as_str().unwrap();
    let vhd = PathBuf::from(uri.strip_prefix("file://").unwrap());
    let bytes = std::fs::read(&vhd).unwrap();
    assert_eq!(
        bytes.len() % (1 << 20),
        512,
        "a fixed VHD: whole MiB plus the footer"
    );
    assert_eq!(&bytes[bytes.len() - 512..][..8], b"conectix");
    // Nothing left: no QEMU process of this state dir, no work dir.
    let needle = format!("{}/", state.display());
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            assert!(
                !(cmdline.contains("qemu-system") && cmdline.contains(&needle)),
                "left running: {cmdline}"
            );
        }
    }
    let run_dir = vhd
        .ancestors()
        .find(|p| p.parent().is_some_and(|q| q.ends_with("builds")))
        .unwrap();
    assert!(!run_dir.join("work").exists(), "the work dir is removed");
}
