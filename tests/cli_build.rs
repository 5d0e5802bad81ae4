//! `imagebuilder build` and `imagebuilder template ...` on the mock host: exit codes, JSON
//! events, and the template lifecycle over a state directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Runs the CLI on the mock host (these tests are about the CLI, not the VMs).
fn imagebuilder(state: &Path, args: &[&str]) -> Output {
    let mut args = args.to_vec();
    let chooses_host = args.iter().any(|a| a.starts_with("--host"));
    if !chooses_host
        && (matches!(args.first(), Some(&"build")) || args.starts_with(&["template", "run"]))
    {
        args.insert(if args[0] == "build" { 1 } else { 2 }, "--host=mock");
    }
    Command::new(env!("CARGO_BIN_EXE_imagebuilder"))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the imagebuilder binary runs")
}

fn state_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_build")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn build_on_the_mock_host_succeeds_and_prints_outputs() {
    let state = state_dir("build_ok");
    let out = imagebuilder(
        &state,
        &["build", "examples/templates/platform-image-to-vhd.json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("debian12-web-vhd\tmemory://debian12-web/debian12-web-vhd\t"),
        "{stdout}"
    );
    let builds: Vec<_> = std::fs::read_dir(state.join("builds")).unwrap().collect();
    assert_eq!(builds.len(), 1);
    let run_dir = builds[0].as_ref().unwrap().path();
    let log = std::fs::read_to_string(run_dir.join("customization.log")).unwrap();
    assert!(log.contains("starting Shell write-motd"), "{log}");
    assert!(!run_dir.join("work").exists(), "the work dir is removed");
}

#[test]
fn build_json_prints_events_then_the_result() {
    let state = state_dir("build_json");
    let out = imagebuilder(
        &state,
        &[
            "build",
            "--json",
            "examples/templates/gallery-version-to-gallery.json",
        ],
    );
    // The default environment has no gallery images yet: the source cannot be resolved.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines[0]["event"], "stateChanged");
    let last = lines.last().unwrap();
    assert_eq!(last["runState"], "Failed");
    assert_eq!(last["runSubState"], "Building");
    assert!(
        last["message"].as_str().unwrap().contains("gallery image"),
        "{last}"
    );
    assert_eq!(last["outputs"], Value::Array(vec![]));
}

#[test]
fn build_with_an_invalid_template_is_a_usage_error() {
    let state = state_dir("build_invalid");
    let dir = state.join("input");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    std::fs::write(&path, r#"{"source": {"type": "ISO"}, "distribute": []}"#).unwrap();
    let out = imagebuilder(&state, &["build", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("source.type: BadSourceType"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_libvirt_host_needs_its_feature_and_reports_what_its_driver_cannot_do() {
    let state = state_dir("build_libvirt");
    let out = imagebuilder(
        &state,
        &[
            "build",
            "--host",
            "libvirt",
            // libvirt's built-in test driver: no daemon, no guest, no volume streams.
            "--libvirt-uri",
            "test:///default",
            "--libvirt-pool",
            "default-pool",
            "examples/templates/platform-image-to-vhd.json",
        ],
    );
    if cfg!(feature = "libvirt") {
        // The source image may not exist here; either way the build fails and says why.
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    } else {
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("lacks the 'libvirt' feature"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn template_lifecycle_create_run_outputs_patch_delete() {
    let state = state_dir("lifecycle");
    let template = "examples/templates/platform-image-to-vhd.json";
    assert_eq!(
        imagebuilder(&state, &["template", "create", "web", template])
            .status
            .code(),
        Some(0)
    );
    let again = imagebuilder(&state, &["template", "create", "web", template]);
    assert_eq!(again.status.code(), Some(2), "templates are immutable");
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );

    let run = imagebuilder(&state, &["template", "run", "web"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let list = text(&imagebuilder(&state, &["template", "list"]).stdout);
    assert_eq!(list.trim(), "web\tSucceeded\tSucceeded/Distributing");
    let outputs: Value =
        serde_json::from_slice(&imagebuilder(&state, &["template", "outputs", "web"]).stdout)
            .unwrap();
    assert_eq!(outputs[0]["runOutputName"], "debian12-web-vhd");
    let show: Value =
        serde_json::from_slice(&imagebuilder(&state, &["template", "show", "web"]).stdout).unwrap();
    assert_eq!(show["lastRunStatus"]["runState"], "Succeeded");
    assert!(show["lastRunStatus"]["endTime"].is_string());

    let patches = state.join("patches");
    std::fs::create_dir_all(&patches).unwrap();
    std::fs::write(
        patches.join("tags.json"),
        r#"{"tags": {"owner": "platform"}}"#,
    )
    .unwrap();
    std::fs::write(
        patches.join("drop.json"),
        r#"{"properties": {"distribute": [{"type": "VHD", "runOutputName": "other"}]}}"#,
    )
    .unwrap();
    std::fs::write(
        patches.join("source.json"),
        r#"{"properties": {"source": {"type": "PlatformImage"}}}"#,
    )
    .unwrap();
    let ok = imagebuilder(
        &state,
        &[
            "template",
            "patch",
            "web",
            patches.join("tags.json").to_str().unwrap(),
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let drop = imagebuilder(
        &state,
        &[
            "template",
            "patch",
            "web",
            patches.join("drop.json").to_str().unwrap(),
        ],
    );
    assert_eq!(drop.status.code(), Some(1), "dropping a target is refused");
    assert!(
        text(&drop.stdout).contains("Deleting a distribution target is not allowed"),
        "{}",
        text(&drop.stdout)
    );
    let source = imagebuilder(
        &state,
        &[
            "template",
            "patch",
            "web",
            patches.join("source.json").to_str().unwrap(),
        ],
    );
    assert_eq!(
        source.status.code(),
        Some(1),
        "only tags, identity, distribute and vmProfile"
    );

    assert_eq!(
        imagebuilder(&state, &["template", "delete", "web"])
            .status
            .code(),
        Some(0)
    );
    assert!(
        !state.join("templates").join("web").exists(),
        "staging is removed"
    );
    assert_eq!(
        imagebuilder(&state, &["template", "show", "web"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn cancel_without_a_running_build_is_an_error() {
    let state = state_dir("cancel_idle");
    assert_eq!(
        imagebuilder(
            &state,
            &[
                "template",
                "create",
                "web",
                "examples/templates/properties-only.json"
            ]
        )
        .status
        .code(),
        Some(0)
    );
    let out = imagebuilder(&state, &["template", "cancel", "web"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(path);
                }
            }
        }
    }
    found
}

#[test]
fn secure_parameters_stay_out_of_the_state_dir_but_the_template_still_runs() {
    use std::os::unix::fs::PermissionsExt;

    const CANARY: &str = "canary-5e1d27b4";
    let state = state_dir("secure_parameters");
    std::fs::create_dir_all(&state).unwrap();
    let doc = serde_json::json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"token": {"type": "secureString"}},
        "resources": [{
            "type": "Microsoft.VirtualMachineImages/imageTemplates",
            "apiVersion": "2024-02-01",
            "name": "secrets",
            "location": "local",
            "properties": {
                "source": {"type": "PlatformImage", "publisher": "Debian",
                           "offer": "debian-12", "sku": "12", "version": "latest"},
                "customize": [{"type": "Shell", "name": "deploy", "inline": [
                    "[concat('deploy --token ', parameters('token'))]",
                    "[concat('echo token=', parameters('token'), ' done')]"
                ]}],
                "distribute": [{"type": "VHD", "runOutputName": "vhd"}]
            }
        }]
    });
    let file = state.join("deployment.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let token = format!("token={CANARY}");
    let create = imagebuilder(
        &state,
        &[
            "template",
            "create",
            "sec",
            file.to_str().unwrap(),
            "--parameter",
            &token,
        ],
    );
    assert_eq!(create.status.code(), Some(0), "{}", text(&create.stderr));
    std::fs::remove_file(&file).unwrap();

    let secrets_file = state.join("templates").join("sec").join("secrets.json");
    let only_secrets = |when: &str| {
        let found = files_containing(&state, CANARY);
        assert_eq!(found, std::slice::from_ref(&secrets_file), "{when}");
        let mode = std::fs::metadata(&secrets_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{when}");
    };
    only_secrets("after create");

    let show = imagebuilder(&state, &["template", "show", "sec"]);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show.stderr));
    assert!(
        !text(&show.stdout).contains(CANARY),
        "{}",
        text(&show.stdout)
    );

    let run = imagebuilder(&state, &["template", "run", "sec"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(!text(&run.stdout).contains(CANARY));
    assert!(!text(&run.stderr).contains(CANARY));
    only_secrets("after run");

    let patch = state.join("tags.json");
    std::fs::write(&patch, r#"{"tags": {"owner": "platform"}}"#).unwrap();
    let patched = imagebuilder(
        &state,
        &["template", "patch", "sec", patch.to_str().unwrap()],
    );
    assert_eq!(patched.status.code(), Some(0), "{}", text(&patched.stderr));
    only_secrets("after patch");
    let run = imagebuilder(&state, &["template", "run", "sec"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    only_secrets("after a run of the patched template");

    let delete = imagebuilder(&state, &["template", "delete", "sec"]);
    assert_eq!(delete.status.code(), Some(0), "{}", text(&delete.stderr));
    assert!(files_containing(&state, CANARY).is_empty());
}

#[test]
fn build_warns_on_stderr_of_fields_without_local_effect() {
    let state = state_dir("build_warns");
    std::fs::create_dir_all(&state).unwrap();
    let text_of = std::fs::read_to_string("examples/templates/platform-image-to-vhd.json").unwrap();
    let mut doc: Value = serde_json::from_str(&text_of).unwrap();
    doc["properties"]["optimize"] = serde_json::json!({"vmBoot": {"state": "Enabled"}});
    let template = state.join("with-vm-boot.json");
    std::fs::write(&template, doc.to_string()).unwrap();
    let out = imagebuilder(&state, &["build", "--json", template.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("properties.optimize.vmBoot: warning: has no effect here: "),
        "{stderr}"
    );
    // stdout stays one JSON value a line.
    for line in text(&out.stdout).lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}
