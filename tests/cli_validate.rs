//! `imagebuilder validate`: exit codes, text and JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn imagebuilder(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imagebuilder"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the imagebuilder binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Writes `text` to a file unique to the calling test.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_validate");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const VALID: &str = r#"{
  "type": "Microsoft.VirtualMachineImages/imageTemplates",
  "apiVersion": "2024-02-01",
  "location": "local",
  "properties": {
    "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12", "sku": "12", "version": "latest"},
    "distribute": [{"type": "VHD", "runOutputName": "vhd"}]
  }
}"#;

fn invalid_template() -> String {
    VALID
        .replace(
            r#""runOutputName": "vhd""#,
            r#""runOutputName": "bad name""#,
        )
        .replace(r#""sku": "12", "#, "")
}

#[test]
fn bundled_examples_are_valid() {
    let mut args = vec!["validate"];
    let examples: Vec<String> = std::fs::read_dir("examples/templates")
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".json"))
        .collect();
    assert!(examples.len() >= 5, "examples found: {examples:?}");
    args.extend(examples.iter().map(String::as_str));
    let out = imagebuilder(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    for example in &examples {
        assert!(
            stderr(&out).contains(&format!("{example}: valid")),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn valid_template_exits_zero_with_nothing_on_stdout() {
    let path = temp_file("valid.json", VALID);
    let out = imagebuilder(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("valid (1 template, 0 warnings)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invalid_template_exits_one_with_one_error_a_line() {
    let path = temp_file("invalid.json", &invalid_template());
    let out = imagebuilder(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("properties.source.sku: BadPIRSource: "),
        "{text}"
    );
    assert!(
        lines[1]
            .starts_with("properties.distribute[0].runOutputName: BadDistributeType: 'bad name'"),
        "{text}"
    );
    assert!(stderr(&out).contains("invalid (2 errors, 0 warnings)"));
}

#[test]
fn warnings_do_not_fail_validation() {
    let lenient = VALID
        .replace("2024-02-01", "2022-07-01")
        .replace(r#""type": "VHD""#, r#""type": "vhd""#);
    let path = temp_file("warning.json", &lenient);
    let out = imagebuilder(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        stdout(&out).trim(),
        "properties.distribute[0].type: warning: distribute type 'vhd' should be spelled 'VHD'; accepted at api-version 2022-07-01, rejected from 2024-02-01"
    );
}

#[test]
fn malformed_json_reports_line_and_column() {
    let path = temp_file(
        "malformed.json",
        "{\n  \"properties\": {\n    \"source\": ,\n  }\n}\n",
    );
    let out = imagebuilder(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("$: Other: invalid JSON at line 3, column 15: "),
        "{text}"
    );
}

#[test]
fn json_output_is_one_document_with_errors_and_warnings() {
    let path = temp_file("invalid-json.json", &invalid_template());
    let out = imagebuilder(&["validate", "--json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_str(&stdout(&out)).expect("stdout is one JSON document");
    assert_eq!(doc["valid"], Value::Bool(false));
    let file = &doc["files"][0];
    assert_eq!(file["valid"], Value::Bool(false));
    let errors = file["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["path"], "properties.source.sku");
    assert_eq!(errors[0]["code"], "BadPIRSource");
    assert_eq!(errors[0]["severity"], "error");
    assert!(errors[0]["message"].as_str().unwrap().contains("sku"));
    assert_eq!(file["warnings"], Value::Array(vec![]));
}

#[test]
fn json_output_for_a_valid_file_names_its_shape() {
    let path = temp_file("valid-json.json", VALID);
    let out = imagebuilder(&["validate", "--json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["valid"], Value::Bool(true));
    assert_eq!(doc["files"][0]["shape"], "resource");
    assert_eq!(doc["files"][0]["templates"], 1);
}

#[test]
fn unreadable_template_exits_two() {
    let out = imagebuilder(&["validate", "does/not/exist.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read template does/not/exist.json"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(imagebuilder(&["validate"]).status.code(), Some(2));
    assert_eq!(imagebuilder(&["frobnicate"]).status.code(), Some(2));
    let path = temp_file("usage.json", VALID);
    let out = imagebuilder(&[
        "validate",
        "--parameter",
        "no-equals-sign",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'no-equals-sign' is not of the form NAME=VALUE"));
}

#[test]
fn malformed_parameters_file_exits_two() {
    let template = temp_file("params-template.json", VALID);
    let params = temp_file("params-bad.json", "{\"parameters\": ");
    let out = imagebuilder(&[
        "validate",
        "--parameters-file",
        params.to_str().unwrap(),
        template.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not valid JSON (line 1, column"),
        "{}",
        stderr(&out)
    );
}

const DEPLOYMENT: &str = r#"{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {"outputName": {"type": "string"}, "region": {"type": "string", "defaultValue": "[resourceGroup().location]"}},
  "resources": [{
    "type": "Microsoft.VirtualMachineImages/imageTemplates",
    "apiVersion": "2024-02-01",
    "name": "arm",
    "location": "[parameters('region')]",
    "properties": {
      "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12", "sku": "12", "version": "latest"},
      "distribute": [{"type": "ManagedImage", "runOutputName": "[parameters('outputName')]",
        "imageId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/x",
        "location": "[parameters('region')]"}]
    }
  }]
}"#;

#[test]
fn deployment_parameters_come_from_the_command_line() {
    let path = temp_file("deployment.json", DEPLOYMENT);
    let path = path.to_str().unwrap();
    let out = imagebuilder(&["validate", "--parameter", "outputName=debian", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = imagebuilder(&["validate", "--parameter", "outputName=not valid", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with(
            "resources[0].properties.distribute[0].runOutputName: BadDistributeType: 'not valid'"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_missing_deployment_parameter_is_named() {
    let path = temp_file("deployment-missing.json", DEPLOYMENT);
    let out = imagebuilder(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("parameters.outputName: Other: "), "{text}");
    assert!(text.contains("--parameter outputName=VALUE"), "{text}");
}

#[test]
fn deployment_parameters_come_from_a_parameters_file() {
    let template = temp_file("deployment-file.json", DEPLOYMENT);
    let params = temp_file(
        "deployment.parameters.json",
        r#"{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
            "contentVersion": "1.0.0.0", "parameters": {"outputName": {"value": "from-file"}}}"#,
    );
    let out = imagebuilder(&[
        "validate",
        "--parameters-file",
        params.to_str().unwrap(),
        "--json",
        template.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["files"][0]["shape"], "deployment");
}

#[test]
fn several_files_prefix_each_line_with_its_file_and_escape_newlines() {
    let bad = invalid_template().replace(r#""bad name""#, r#""bad\nname""#);
    let a = temp_file("multi-a.json", &bad);
    let b = temp_file("multi-b.json", VALID);
    let out = imagebuilder(&["validate", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let prefix = format!("{}: ", a.display());
    assert!(lines.iter().all(|l| l.starts_with(&prefix)), "{text}");
    assert!(lines[1].contains(r"'bad\nname'"), "{text}");
}
