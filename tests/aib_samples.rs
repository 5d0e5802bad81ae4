//! Compatibility with the public AIB samples (github.com/Azure/azvmimagebuilder,
//! `quickquickstarts/` and `solutions/`): our own fixtures modeled on each sample pattern must
//! validate, and invalid variants must fail with exactly the expected codes and paths.
//! `tests/fixtures/aib-samples/manifest.json` lists them and names the sample each follows.

use std::path::{Path, PathBuf};

use imagebuilder::template::arm::SuppliedParameters;
use imagebuilder::template::{parse_document, ParseOptions};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aib-samples")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Entry {
    file: String,
    parameters_file: Option<String>,
    /// `None` when valid, else the (path, code) pairs expected.
    expected_errors: Option<Vec<(String, String)>>,
}

fn manifest() -> Vec<Entry> {
    let Value::Array(entries) = read_json(&fixtures().join("manifest.json")) else {
        panic!("manifest.json is an array");
    };
    entries
        .iter()
        .map(|e| Entry {
            file: e["file"].as_str().unwrap().to_owned(),
            parameters_file: e["parametersFile"].as_str().map(str::to_owned),
            expected_errors: match &e["expect"] {
                Value::String(s) if s == "valid" => None,
                expect => Some(
                    expect["errors"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|err| {
                            (
                                err["path"].as_str().unwrap().to_owned(),
                                err["code"].as_str().unwrap().to_owned(),
                            )
                        })
                        .collect(),
                ),
            },
        })
        .collect()
}

/// The (path, code) pairs of every error in the fixture, or an empty list when valid.
fn errors_of(entry: &Entry) -> Vec<(String, String)> {
    let mut options = ParseOptions::default();
    if let Some(params) = &entry.parameters_file {
        options.parameters =
            SuppliedParameters::from_parameters_file(&read_json(&fixtures().join(params)))
                .unwrap_or_else(|e| panic!("{params}: {e:?}"));
    }
    let text = std::fs::read_to_string(fixtures().join(&entry.file)).unwrap();
    match parse_document(&text, &options) {
        Ok(doc) => {
            assert!(
                !doc.templates.is_empty(),
                "{}: no template read",
                entry.file
            );
            Vec::new()
        }
        Err(diags) => {
            let mut found: Vec<(String, String)> = diags
                .errors()
                .map(|d| (d.path.clone(), d.code.to_string()))
                .collect();
            found.sort();
            found
        }
    }
}

#[test]
fn manifest_covers_every_fixture() {
    let listed: Vec<String> = manifest().into_iter().map(|e| e.file).collect();
    for dir in ["valid", "invalid"] {
        for file in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let name = format!("{dir}/{}", file.unwrap().file_name().to_string_lossy());
            if !name.ends_with(".parameters.json") {
                assert!(listed.contains(&name), "{name} is not in manifest.json");
            }
        }
    }
    assert!(listed.len() >= 40, "{} fixtures", listed.len());
}

#[test]
fn every_sample_pattern_validates() {
    let failures: Vec<String> = manifest()
        .iter()
        .filter(|e| e.expected_errors.is_none())
        .filter_map(|e| {
            let errors = errors_of(e);
            (!errors.is_empty()).then(|| format!("{}: {errors:?}", e.file))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "valid fixtures rejected:\n{}",
        failures.join("\n")
    );
}

#[test]
fn invalid_variants_fail_with_the_expected_code_and_path() {
    let failures: Vec<String> = manifest()
        .iter()
        .filter_map(|e| {
            let mut expected = e.expected_errors.clone()?;
            expected.sort();
            let found = errors_of(e);
            (found != expected)
                .then(|| format!("{}:\n  expected {expected:?}\n  found    {found:?}", e.file))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
