//! A canary secret (a secureString deployment parameter used in a step's script) reaches the
//! guest but no byte the run writes: log file, events, report.
#![cfg(feature = "mock")]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use imagebuilder_core::distribute::InMemoryTargets;
use imagebuilder_core::engine::{BuildEvent, Engine, RunOptions};
use imagebuilder_core::run::RunState;
use imagebuilder_core::source::SourceResolver;
use imagebuilder_core::template::{parse_value, ImageTemplate, ParseOptions};
use imagebuilder_drivers::mock::{MockBuildHost, MockCall, MockResponse};
use serde_json::json;

const CANARY: &str = "canary-7f3a9c1e";

fn deployment(failing: bool) -> ImageTemplate {
    let script = if failing {
        "[concat('deploy --token ', parameters('token'), ' --fail')]"
    } else {
        "[concat('deploy --token ', parameters('token'))]"
    };
    let doc = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"token": {"type": "secureString", "defaultValue": CANARY}},
        "resources": [{
            "type": "Microsoft.VirtualMachineImages/imageTemplates",
            "apiVersion": "2024-02-01",
            "name": "secrets",
            "location": "westeurope",
            "properties": {
                "source": {"type": "DiskImage", "uri": "file:///images/base.qcow2"},
                "customize": [{"type": "Shell", "name": "deploy", "inline": [script]}],
                "distribute": [{"type": "VHD", "runOutputName": "vhd"}]
            }
        }]
    });
    let parsed = parse_value(&doc, &ParseOptions::default()).unwrap_or_else(|d| panic!("{d:?}"));
    parsed.templates.into_iter().next().unwrap()
}

/// Runs `template` and returns every byte it wrote or told: the log file, the events as
/// JSON, the report as JSON.
async fn run(test: &str, host: &MockBuildHost, template: &ImageTemplate) -> (RunState, String) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("engine_secrets")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    let engine = Engine::new(
        Arc::new(host.clone()),
        Arc::new(SourceResolver::default()),
        Arc::new(InMemoryTargets::new()),
    );
    let events: Arc<Mutex<Vec<BuildEvent>>> = Arc::default();
    let mut options = RunOptions::new(&dir);
    let sink = events.clone();
    options.events = Arc::new(move |e: BuildEvent| sink.lock().unwrap().push(e));
    let report = engine.run(template, options).await;
    let mut everything = std::fs::read_to_string(dir.join("customization.log")).unwrap();
    for event in events.lock().unwrap().iter() {
        everything.push_str(&serde_json::to_string(event).unwrap());
    }
    everything.push_str(&serde_json::to_string(&report).unwrap());
    (report.run_state, everything)
}

#[tokio::test]
async fn a_secret_reaches_the_guest_and_nothing_the_run_writes() {
    let template = deployment(false);
    assert_eq!(
        template.secrets,
        [CANARY],
        "the deployment's secure value is known"
    );
    let host = MockBuildHost::new();
    // The script echoes its token, as careless scripts do.
    host.on_exec(
        "deploy --token",
        MockResponse::exit(0).stdout(format!("using token {CANARY}")),
    );
    let (state, everything) = run("success", &host, &template).await;
    assert_eq!(state, RunState::Succeeded);
    let uploaded = host.calls().into_iter().any(|call| match call {
        MockCall::Upload { contents, .. } => String::from_utf8_lossy(&contents).contains(CANARY),
        MockCall::Exec { command, .. } => command.contains(CANARY),
        _ => false,
    });
    assert!(uploaded, "the guest got the secret");
    assert!(
        everything.contains("using token <redacted>"),
        "{everything}"
    );
    assert!(!everything.contains(CANARY), "{everything}");
}

#[tokio::test]
async fn a_failing_step_names_its_command_without_the_secret() {
    let template = deployment(true);
    let host = MockBuildHost::new();
    host.on_exec(
        "--fail",
        MockResponse::exit(3).stderr(format!("bad token {CANARY}")),
    );
    let (state, everything) = run("failure", &host, &template).await;
    assert_eq!(state, RunState::Failed);
    assert!(everything.contains("<redacted>"), "{everything}");
    assert!(!everything.contains(CANARY), "{everything}");
}

#[tokio::test]
async fn a_sensitive_inline_step_keeps_its_commands_out_of_everything_the_run_writes() {
    let command = format!("register --key {CANARY}");
    let doc = json!({
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2024-02-01",
        "name": "sensitive",
        "location": "westeurope",
        "properties": {
            "source": {"type": "DiskImage", "uri": "file:///images/base.qcow2"},
            "customize": [
                {"type": "Shell", "name": "register", "sensitive": true, "inline": [command]}
            ],
            "distribute": [{"type": "VHD", "runOutputName": "vhd"}]
        }
    });
    let parsed = parse_value(&doc, &ParseOptions::default()).unwrap_or_else(|d| panic!("{d:?}"));
    let template = parsed.templates.into_iter().next().unwrap();
    let host = MockBuildHost::new();
    // The shell echoes the command it runs (set -x) and fails.
    host.on_exec(
        "register --key",
        MockResponse::exit(4).stderr(format!("+ {command}")),
    );
    let (state, everything) = run("sensitive", &host, &template).await;
    assert_eq!(state, RunState::Failed);
    let ran = host.calls().into_iter().any(|call| match call {
        MockCall::Upload { contents, .. } => String::from_utf8_lossy(&contents).contains(CANARY),
        MockCall::Exec { command, .. } => command.contains(CANARY),
        _ => false,
    });
    assert!(ran, "the guest got the command");
    assert!(everything.contains("<redacted>"), "{everything}");
    assert!(!everything.contains(CANARY), "{everything}");
}
