//! Lifecycle of templates in the store: AIB's create, get, list, patch, delete and run rules.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use imagebuilder_core::run::{ProvisioningState, RunOutput, RunState, RunSubState};
use imagebuilder_core::store::{StoreError, TemplateStore};
use imagebuilder_core::template::{parse_document, ErrorCode, ImageTemplate, ParseOptions};
use serde_json::{json, Value};

/// A state directory under the target's temp dir, removed when dropped.
struct StateDir(PathBuf);

impl StateDir {
    fn new(test: &str) -> Self {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("store-lifecycle-{test}-{}", std::process::id()));
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

fn template_json() -> Value {
    json!({
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2024-02-01",
        "location": "westus2",
        "tags": {"owner": "tests"},
        "properties": {
            "source": {"type": "PlatformImage", "publisher": "Canonical",
                       "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                       "version": "latest"},
            "customize": [{"type": "Shell", "inline": ["echo hello"]}],
            "distribute": [
                {"type": "VHD", "runOutputName": "vhd-a"},
                {"type": "VHD", "runOutputName": "vhd-b"}
            ],
            "vmProfile": {"vmSize": "Standard_D2s_v3", "osDiskSizeGB": 64}
        }
    })
}

fn template_from(value: &Value) -> ImageTemplate {
    let doc = parse_document(&value.to_string(), &ParseOptions::default()).expect("valid template");
    doc.templates.into_iter().next().expect("one template")
}

fn template() -> ImageTemplate {
    template_from(&template_json())
}

fn output(name: &str, size: u64) -> RunOutput {
    RunOutput {
        run_output_name: name.to_owned(),
        artifact_id: format!("file:///images/{name}-{size}.vhd"),
        artifact_uri: format!("file:///images/{name}-{size}.vhd"),
        sha256: "ab".repeat(32),
        size,
        tags: BTreeMap::new(),
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).expect("read")).expect("valid JSON")
}

fn run_output_names(template: &ImageTemplate) -> Vec<&str> {
    template
        .properties
        .distribute
        .iter()
        .map(|t| t.run_output_name())
        .collect()
}

#[test]
fn create_get_and_list() {
    let dir = StateDir::new("create-get-list");
    let store = dir.store();

    let created = store.create("jammy", &template()).unwrap();
    assert_eq!(created.name, "jammy");
    assert_eq!(created.template.name.as_deref(), Some("jammy"));
    assert_eq!(created.provisioning_state, ProvisioningState::Succeeded);
    assert_eq!(created.last_run_status, None);
    for sub in ["artifacts", "runs", "outputs"] {
        assert!(created.staging_dir.join(sub).is_dir(), "staging/{sub}");
    }
    store.create("Alpha", &template()).unwrap();

    let got = store.get("jammy").unwrap();
    assert_eq!(got, created);
    // ARM names are case-insensitive and keep the case they were created with.
    assert_eq!(store.get("ALPHA").unwrap().name, "Alpha");

    let names: Vec<String> = store.list().unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["Alpha", "jammy"]);

    match store.get("missing") {
        Err(StoreError::NotFound { name }) => assert_eq!(name, "missing"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    for bad in ["has space", "..", ".", "", "a/b"] {
        assert!(
            matches!(
                store.create(bad, &template()),
                Err(StoreError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn create_refuses_an_existing_name_and_keeps_the_original() {
    let dir = StateDir::new("immutable");
    let store = dir.store();
    let original = store.create("jammy", &template()).unwrap();
    let template_file = dir.0.join("templates/jammy/template.json");
    let bytes = fs::read(&template_file).unwrap();

    let mut other = template_json();
    other["tags"] = json!({"owner": "someone-else"});
    for name in ["jammy", "JAMMY"] {
        match store.create(name, &template_from(&other)) {
            Err(StoreError::AlreadyExists { name: n }) => assert_eq!(n, name),
            res => panic!("expected AlreadyExists, got {res:?}"),
        }
    }
    assert_eq!(store.get("jammy").unwrap(), original);
    assert_eq!(fs::read(&template_file).unwrap(), bytes);
}

#[test]
fn create_refuses_a_template_that_does_not_validate() {
    let dir = StateDir::new("create-invalid");
    let store = dir.store();
    let mut template = template();
    if let Some(imagebuilder_core::template::model::DistributorSpec::Vhd(t)) =
        template.properties.distribute.first_mut()
    {
        t.run_output_name = "not valid!".to_owned();
    }
    match store.create("jammy", &template) {
        Err(StoreError::Invalid(diags)) => {
            assert!(diags
                .errors()
                .any(|d| d.code == ErrorCode::BadDistributeType
                    && d.path == "properties.distribute[0].runOutputName"));
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(matches!(
        store.get("jammy"),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn patch_updates_tags_distribute_and_vm_profile() {
    let dir = StateDir::new("patch-ok");
    let store = dir.store();
    let created = store.create("jammy", &template()).unwrap();

    let patched = store
        .patch(
            "jammy",
            &json!({
                "tags": {"team": "images"},
                "properties": {
                    "distribute": [
                        {"type": "VHD", "runOutputName": "vhd-a"},
                        {"type": "VHD", "runOutputName": "vhd-b"},
                        {"type": "VHD", "runOutputName": "vhd-c"}
                    ],
                    "vmProfile": {"vmSize": "Standard_D4s_v3"}
                }
            }),
        )
        .unwrap();
    assert_eq!(patched.provisioning_state, ProvisioningState::Succeeded);
    let t = &patched.template;
    assert_eq!(
        t.tags,
        BTreeMap::from([("team".to_owned(), "images".to_owned())])
    );
    assert_eq!(run_output_names(t), ["vhd-a", "vhd-b", "vhd-c"]);
    assert_eq!(t.properties.vm_profile.vm_size, "Standard_D4s_v3");
    // vmProfile is merged: the disk size not named in the patch stays.
    assert_eq!(t.properties.vm_profile.os_disk_size_gb, 64);
    // Everything else is as created.
    assert_eq!(t.properties.source, created.template.properties.source);
    assert_eq!(
        t.properties.customize,
        created.template.properties.customize
    );
    assert_eq!(t.name.as_deref(), Some("jammy"));
    assert_eq!(patched.created, created.created);
    assert_eq!(store.get("jammy").unwrap(), patched);
    let resource = read_json(&dir.0.join("templates/jammy/resource.json"));
    assert_eq!(resource["provisioningState"], "Succeeded");
}

#[test]
fn patch_refuses_fields_aib_does_not_patch_naming_them() {
    let dir = StateDir::new("patch-fields");
    let store = dir.store();
    let created = store.create("jammy", &template()).unwrap();

    let cases = [
        (json!({"location": "eastus"}), "location"),
        (
            json!({"properties": {"source": {"type": "ManagedImage"}}}),
            "properties.source",
        ),
        (
            json!({"properties": {"customize": []}}),
            "properties.customize",
        ),
        (
            json!({"tags": {"a": "b"}, "properties": {"buildTimeoutInMinutes": 60}}),
            "properties.buildTimeoutInMinutes",
        ),
        (json!(["tags"]), "$"),
    ];
    for (patch, field) in cases {
        match store.patch("jammy", &patch) {
            Err(StoreError::PatchRefused { field: f, reason }) => {
                assert_eq!(f, field, "{patch}");
                assert!(!reason.is_empty());
            }
            other => panic!("expected PatchRefused for {patch}, got {other:?}"),
        }
    }
    assert_eq!(store.get("jammy").unwrap(), created);
}

#[test]
fn patch_refuses_dropping_a_distribute_target() {
    let dir = StateDir::new("patch-drop");
    let store = dir.store();
    let created = store.create("jammy", &template()).unwrap();
    let patch = json!({"properties": {"distribute": [{"type": "VHD", "runOutputName": "vhd-a"}]}});
    match store.patch("jammy", &patch) {
        Err(StoreError::PatchRefused { field, reason }) => {
            assert_eq!(field, "properties.distribute");
            assert!(
                reason.contains("Deleting a distribution target is not allowed"),
                "{reason}"
            );
            assert!(reason.contains("vhd-b"), "{reason}");
        }
        other => panic!("expected PatchRefused, got {other:?}"),
    }
    assert!(matches!(
        store.patch("jammy", &json!({"properties": {"distribute": null}})),
        Err(StoreError::PatchRefused { .. })
    ));
    assert_eq!(store.get("jammy").unwrap(), created);
}

#[test]
fn patch_revalidates_the_patched_template() {
    let dir = StateDir::new("patch-invalid");
    let store = dir.store();
    let created = store.create("jammy", &template()).unwrap();
    let patch = json!({"properties": {"distribute": [
        {"type": "VHD", "runOutputName": "vhd-a"},
        {"type": "VHD", "runOutputName": "vhd-b"},
        {"type": "VHD", "runOutputName": "not valid!"}
    ]}});
    match store.patch("jammy", &patch) {
        Err(StoreError::Invalid(diags)) => {
            let error = diags.errors().next().expect("an error");
            assert_eq!(error.code, ErrorCode::BadDistributeType);
            assert_eq!(error.path, "properties.distribute[2].runOutputName");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // Unknown fields inside vmProfile are caught by the parser (strict api-version).
    assert!(matches!(
        store.patch(
            "jammy",
            &json!({"properties": {"vmProfile": {"vmSzie": "x"}}})
        ),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.get("jammy").unwrap(), created);
}

#[test]
fn delete_removes_the_staging_area_and_a_new_create_starts_clean() {
    let dir = StateDir::new("delete");
    let store = dir.store();
    let created = store.create("jammy", &template()).unwrap();
    let run = store.begin_run("jammy").unwrap();
    fs::write(run.artifacts_dir().join("setup.sh"), "echo hi").unwrap();
    fs::write(run.customization_log(), "line\n").unwrap();
    run.record_outputs(&[output("vhd-a", 1)]).unwrap();
    run.finish(RunState::Succeeded, RunSubState::Distributing, "")
        .unwrap();

    store.delete("jammy").unwrap();
    assert!(!created.staging_dir.exists());
    assert!(!dir.0.join("templates/jammy").exists());
    assert!(matches!(
        store.get("jammy"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.list().unwrap().is_empty());
    assert!(matches!(
        store.delete("jammy"),
        Err(StoreError::NotFound { .. })
    ));
    // Nothing is left behind in the scratch directory either.
    assert_eq!(fs::read_dir(dir.0.join("tmp")).unwrap().count(), 0);

    let again = store.create("jammy", &template()).unwrap();
    assert_eq!(again.last_run_status, None);
    assert!(store.outputs("jammy").unwrap().is_empty());
    assert_eq!(
        fs::read_dir(again.staging_dir.join("artifacts"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        fs::read_dir(again.staging_dir.join("runs"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn delete_is_refused_while_a_run_is_active() {
    let dir = StateDir::new("delete-running");
    let store = dir.store();
    let other = dir.store();
    store.create("jammy", &template()).unwrap();
    let run = store.begin_run("jammy").unwrap();
    for s in [&store, &other] {
        match s.delete("jammy") {
            Err(StoreError::RunActive { name }) => assert_eq!(name, "jammy"),
            res => panic!("expected RunActive, got {res:?}"),
        }
    }
    run.set_status(RunState::Canceling, RunSubState::Customizing, "")
        .unwrap();
    assert!(matches!(
        other.delete("jammy"),
        Err(StoreError::RunActive { .. })
    ));
    assert_eq!(
        store.get("jammy").unwrap().provisioning_state,
        ProvisioningState::Succeeded
    );
    drop(run);
    other.delete("jammy").unwrap();
    assert!(matches!(
        store.get("jammy"),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn begin_run_is_refused_while_another_run_is_active() {
    let dir = StateDir::new("one-run");
    let store = dir.store();
    let other = dir.store();
    store.create("jammy", &template()).unwrap();
    let first = store.begin_run("jammy").unwrap();
    assert!(matches!(
        store.begin_run("jammy"),
        Err(StoreError::RunActive { .. })
    ));
    assert!(matches!(
        other.begin_run("JAMMY"),
        Err(StoreError::RunActive { .. })
    ));
    let first_id = first.run_id().to_owned();
    first
        .finish(RunState::Failed, RunSubState::Building, "boom")
        .unwrap();

    let second = other.begin_run("jammy").unwrap();
    assert!(second.run_id() > first_id.as_str(), "run ids sort by start");
    assert!(second.run_dir().ends_with(second.run_id()));
    assert!(matches!(
        store.begin_run("nope"),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn request_cancel_reaches_the_active_run() {
    let dir = StateDir::new("cancel");
    let store = dir.store();
    let other = dir.store();
    store.create("jammy", &template()).unwrap();
    assert!(matches!(
        other.request_cancel("jammy"),
        Err(StoreError::NoActiveRun { .. })
    ));
    assert!(matches!(
        other.request_cancel("nope"),
        Err(StoreError::NotFound { .. })
    ));

    let run = store.begin_run("jammy").unwrap();
    assert!(!run.cancel_requested());
    other.request_cancel("jammy").unwrap();
    assert!(run.cancel_requested());
    run.set_status(RunState::Canceling, RunSubState::Customizing, "canceling")
        .unwrap();
    run.finish(RunState::Canceled, RunSubState::Customizing, "canceled")
        .unwrap();
    let status = store.get("jammy").unwrap().last_run_status.unwrap();
    assert_eq!(status.run_state, RunState::Canceled);

    assert!(matches!(
        other.request_cancel("jammy"),
        Err(StoreError::NoActiveRun { .. })
    ));
    let next = store.begin_run("jammy").unwrap();
    assert!(
        !next.cancel_requested(),
        "a new run starts without the old request"
    );
}

#[test]
fn last_run_status_follows_the_run_and_gets_an_end_time() {
    let dir = StateDir::new("status");
    let store = dir.store();
    store.create("jammy", &template()).unwrap();
    let run = store.begin_run("jammy").unwrap();
    assert!(run.customization_log().is_file());
    assert!(run.artifacts_dir().is_dir());
    assert_eq!(run.template().name.as_deref(), Some("jammy"));

    let record = store.get("jammy").unwrap();
    assert_eq!(record.last_run_dir().as_deref(), Some(run.run_dir()));
    let status = record.last_run_status.unwrap();
    assert_eq!(
        (status.run_state, status.run_sub_state),
        (RunState::Running, RunSubState::Queued)
    );
    assert_eq!(status.start_time, run.start_time());
    assert_eq!(status.end_time, None);

    for sub in [
        RunSubState::Building,
        RunSubState::Customizing,
        RunSubState::Distributing,
    ] {
        run.set_status(RunState::Running, sub, &format!("{sub:?}"))
            .unwrap();
        let status = store.get("jammy").unwrap().last_run_status.unwrap();
        assert_eq!(
            (status.run_state, status.run_sub_state),
            (RunState::Running, sub)
        );
        assert_eq!(status.message, format!("{sub:?}"));
        assert_eq!(status.end_time, None);
    }
    assert!(matches!(
        run.set_status(RunState::Succeeded, RunSubState::Distributing, ""),
        Err(StoreError::InvalidRunState { .. })
    ));

    let run_file = run.run_dir().join("run.json");
    let start = run.start_time();
    run.finish(
        RunState::PartiallySucceeded,
        RunSubState::Distributing,
        "1 of 2 failed",
    )
    .unwrap();
    let status = store.get("jammy").unwrap().last_run_status.unwrap();
    assert_eq!(status.run_state, RunState::PartiallySucceeded);
    assert_eq!(status.message, "1 of 2 failed");
    assert_eq!(status.start_time, start);
    assert!(status.end_time.expect("endTime once finished") >= start);

    let record = read_json(&run_file);
    assert_eq!(record["runState"], "PartiallySucceeded");
    assert_eq!(record["runSubState"], "Distributing");
    assert!(record["endTime"].is_string());

    let run = store.begin_run("jammy").unwrap();
    assert!(matches!(
        run.finish(RunState::Running, RunSubState::Queued, ""),
        Err(StoreError::InvalidRunState { .. })
    ));
}

#[test]
fn a_guard_dropped_without_finishing_records_a_failed_run() {
    let dir = StateDir::new("dropped");
    let store = dir.store();
    store.create("jammy", &template()).unwrap();
    let run = store.begin_run("jammy").unwrap();
    run.set_status(RunState::Running, RunSubState::Customizing, "step 2")
        .unwrap();
    drop(run);
    let status = store.get("jammy").unwrap().last_run_status.unwrap();
    assert_eq!(status.run_state, RunState::Failed);
    assert_eq!(status.run_sub_state, RunSubState::Customizing);
    assert!(status.end_time.is_some());
}

#[test]
fn a_running_status_without_a_live_run_reads_as_failed() {
    // What a killed process leaves: Running in resource.json, nobody holding the run lock.
    let dir = StateDir::new("dead-run");
    let store = dir.store();
    store.create("jammy", &template()).unwrap();
    let run = store.begin_run("jammy").unwrap();
    let resource = dir.0.join("templates/jammy/resource.json");
    let running = fs::read(&resource).unwrap();
    run.finish(RunState::Succeeded, RunSubState::Distributing, "")
        .unwrap();
    fs::write(&resource, running).unwrap();

    let status = store.get("jammy").unwrap().last_run_status.unwrap();
    assert_eq!(status.run_state, RunState::Failed);
    assert!(
        status.message.contains("without reporting"),
        "{}",
        status.message
    );
    store.begin_run("jammy").unwrap();
}

#[test]
fn outputs_merge_by_run_output_name() {
    let dir = StateDir::new("outputs");
    let store = dir.store();
    store.create("jammy", &template()).unwrap();
    assert!(store.outputs("jammy").unwrap().is_empty());

    let run = store.begin_run("jammy").unwrap();
    run.record_outputs(&[output("vhd-b", 1)]).unwrap();
    run.record_outputs(&[output("vhd-a", 1)]).unwrap();
    run.finish(RunState::Succeeded, RunSubState::Distributing, "")
        .unwrap();
    assert_eq!(
        store.outputs("jammy").unwrap(),
        [output("vhd-a", 1), output("vhd-b", 1)]
    );

    let run = store.begin_run("jammy").unwrap();
    run.record_outputs(&[output("vhd-b", 2)]).unwrap();
    let run_file = run.run_dir().join("run.json");
    run.finish(RunState::PartiallySucceeded, RunSubState::Distributing, "")
        .unwrap();
    assert_eq!(
        store.outputs("jammy").unwrap(),
        [output("vhd-a", 1), output("vhd-b", 2)]
    );
    // The run's own record holds what that run published.
    let record = read_json(&run_file);
    assert_eq!(record["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(record["outputs"][0]["size"], 2);

    let run = store.begin_run("jammy").unwrap();
    match run.record_outputs(&[output("vhd-c", 3), output("bad name", 3)]) {
        Err(StoreError::Invalid(diags)) => {
            assert_eq!(
                diags.errors().next().unwrap().path,
                "runOutputs[1].runOutputName"
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(store.outputs("jammy").unwrap().len(), 2, "nothing written");
}

#[test]
fn corrupt_state_files_are_reported_naming_the_file() {
    let dir = StateDir::new("corrupt");
    let store = dir.store();
    store.create("jammy", &template()).unwrap();
    let resource = dir.0.join("templates/jammy/resource.json");
    let template_file = dir.0.join("templates/jammy/template.json");
    let good_resource = fs::read(&resource).unwrap();

    let expect_corrupt = |result: Result<(), StoreError>, file: &Path| match result {
        Err(StoreError::Corrupt { path, message }) => {
            assert_eq!(path, file);
            assert!(!message.is_empty());
        }
        other => panic!("expected Corrupt naming {}, got {other:?}", file.display()),
    };

    for bad in [
        &b"{\"provisioningState\": \"Succ"[..],
        b"",
        b"[]",
        b"{\"provisioningState\": 5, \"created\": \"2026-01-01T00:00:00Z\"}",
        b"{\"provisioningState\": \"Succeeded\", \"created\": \"2026-01-01T00:00:00Z\", \"lastRunId\": \"../../etc\"}",
    ] {
        fs::write(&resource, bad).unwrap();
        expect_corrupt(store.get("jammy").map(drop), &resource);
        expect_corrupt(store.list().map(drop), &resource);
        expect_corrupt(store.begin_run("jammy").map(drop), &resource);
        expect_corrupt(store.patch("jammy", &json!({"tags": {}})).map(drop), &resource);
    }
    fs::write(&resource, &good_resource).unwrap();
    store.get("jammy").unwrap();

    // A hand edit that is valid JSON but not a valid template.
    let mut edited = read_json(&template_file);
    edited["properties"]["distribute"] = json!([]);
    fs::write(&template_file, edited.to_string()).unwrap();
    expect_corrupt(store.get("jammy").map(drop), &template_file);
    fs::remove_file(&template_file).unwrap();
    expect_corrupt(store.get("jammy").map(drop), &template_file);

    // A corrupt template can still be deleted.
    fs::write(&resource, b"garbage").unwrap();
    store.delete("jammy").unwrap();
    assert!(matches!(
        store.get("jammy"),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn a_stray_directory_in_templates_is_reported() {
    let dir = StateDir::new("stray");
    let store = dir.store();
    store.create("jammy", &template()).unwrap();
    let stray = dir.0.join("templates/Not A Template");
    fs::create_dir_all(&stray).unwrap();
    match store.list() {
        Err(StoreError::Corrupt { path, .. }) => assert_eq!(path, stray),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn secure_values_are_kept_apart_and_come_back_for_runs() {
    const CANARY: &str = "canary-0b9e44d1";
    let dir = StateDir::new("secrets");
    let store = dir.store();
    let deployment = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"token": {"type": "secureString", "defaultValue": CANARY}},
        "resources": [{
            "type": "Microsoft.VirtualMachineImages/imageTemplates",
            "apiVersion": "2024-02-01",
            "name": "x",
            "location": "westus2",
            "properties": {
                "source": {"type": "PlatformImage", "publisher": "Canonical",
                           "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                           "version": "latest"},
                "customize": [{"type": "Shell", "name": "s",
                               "inline": ["[concat('use ', parameters('token'))]"]}],
                "distribute": [{"type": "VHD", "runOutputName": "vhd"}]
            }
        }]
    });
    let created = template_from(&deployment);
    assert_eq!(created.secrets, [CANARY]);
    store.create("sec", &created).unwrap();

    let template_file = fs::read_to_string(dir.0.join("templates/sec/template.json")).unwrap();
    assert!(!template_file.contains(CANARY), "{template_file}");
    assert!(
        template_file.contains("use <secure value>"),
        "{template_file}"
    );

    let record = store.get("sec").unwrap();
    assert_eq!(
        record.template.secrets,
        [CANARY],
        "the engine can scrub them"
    );
    assert_eq!(
        record.template.properties, created.properties,
        "runnable as created"
    );
    assert!(!record.redacted_template().to_string().contains(CANARY));
    let run = store.begin_run("sec").unwrap();
    assert_eq!(run.template().secrets, [CANARY]);
    assert_eq!(run.template().properties, created.properties);
    drop(run);

    store
        .patch("sec", &json!({"tags": {"owner": "secrets"}}))
        .unwrap();
    let patched = store.get("sec").unwrap();
    assert_eq!(patched.template.secrets, [CANARY]);
    assert_eq!(patched.template.properties, created.properties);
    store.delete("sec").unwrap();
    assert!(!dir.0.join("templates/sec").exists());
}
