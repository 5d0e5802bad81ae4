//! A managed image published to a region whose store is S3 (moto) or Azure (Azurite) is the
//! source of the next build: the engine downloads it, verifies it and hands the host a
//! local path. The host is the mock (the download and the stores are real).
#![cfg(all(feature = "cloud", feature = "drivers"))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use imagebuilder::core::distribute::InMemoryTargets;
use imagebuilder::core::engine::{Engine, RunOptions};
use imagebuilder::core::environment::Environment;
use imagebuilder::core::host::VmPurpose;
use imagebuilder::core::run::RunState;
use imagebuilder::core::source::{SourceCache, SourceResolver};
use imagebuilder::dist::LocalTargets;
use imagebuilder::drivers::mock::{MockBuildHost, MockCall};
use imagebuilder::template::{parse_value, ImageTemplate, ParseOptions};
use serde_json::{json, Value};
use sha2::Digest;

/// The location of a storage server from `var` (skips, or fails under CI, without it).
fn server(var: &str) -> Option<String> {
    imagebuilder_core::testkit::env::storage_server(var)
}

const IMAGE: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/base";

fn template(source: Value, distribute: Value) -> ImageTemplate {
    let doc = json!({
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2024-02-01",
        "name": "remote-source",
        "location": "local",
        "properties": {
            "source": source,
            "customize": [{"type": "Shell", "name": "hello", "inline": ["echo hello"]}],
            "distribute": distribute
        }
    });
    let parsed = parse_value(&doc, &ParseOptions::default()).unwrap_or_else(|d| panic!("{d:?}"));
    parsed.templates.into_iter().next().unwrap()
}

fn sha256_of(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

async fn managed_image_in_a_remote_region_is_a_source(location: &str, test: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("remote_sources")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let region = format!("{location}/remote-sources/{}-{nanos:x}", std::process::id());
    let mut environment = Environment::embedded_default(&dir.join("state"));
    environment.regions = BTreeMap::from([("eastus".to_owned(), region.clone())]);
    let targets = LocalTargets::new(&dir.join("state"), environment.clone());
    let host = MockBuildHost::new().with_capture_size(3 << 20);
    let source = SourceResolver::new(
        Arc::new(environment.catalog()),
        Arc::new(targets.managed_images().clone()),
        Arc::new(targets.galleries().clone()),
    );
    let cache = SourceCache::new(dir.join("state/cache/sources"));
    let engine = Engine::new(
        Arc::new(host.clone()),
        Arc::new(source.clone()),
        Arc::new(targets.clone()),
    )
    .with_source_cache(cache.clone());

    // Publish a managed image to the remote region.
    let base = dir.join("base.raw");
    std::fs::write(&base, vec![1u8; 1 << 20]).unwrap();
    let publish = template(
        json!({"type": "DiskImage", "uri": base.display().to_string(), "format": "raw"}),
        json!([{"type": "ManagedImage", "runOutputName": "image", "location": "eastus", "imageId": IMAGE}]),
    );
    let report = engine
        .run(&publish, RunOptions::new(dir.join("run1")))
        .await;
    assert_eq!(
        report.run_state,
        RunState::Succeeded,
        "{} {:?}",
        report.message,
        report.failures
    );
    let published = targets.managed_images().get(IMAGE).unwrap();
    assert!(published.uri.starts_with(&region), "{}", published.uri);

    // Build from it: the host boots a verified local copy.
    let build = template(
        json!({"type": "ManagedImage", "imageId": IMAGE}),
        json!([{"type": "VHD", "runOutputName": "vhd"}]),
    );
    // The mock's capture is a placeholder, not a qcow2 a disk writer could read: publish
    // this one in memory.
    let engine = Engine::new(
        Arc::new(host.clone()),
        Arc::new(source),
        Arc::new(InMemoryTargets::new()),
    )
    .with_source_cache(cache);
    let report = engine.run(&build, RunOptions::new(dir.join("run2"))).await;
    assert_eq!(report.run_state, RunState::Succeeded, "{}", report.message);
    let booted = host
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            MockCall::Provision {
                purpose: VmPurpose::Build,
                base_disk,
                ..
            } => Some(base_disk),
            _ => None,
        })
        .next_back()
        .unwrap();
    let local = dir
        .join("state/cache/sources/objects")
        .join(&published.sha256);
    assert_eq!(booted.location, local.display().to_string());
    assert_eq!(sha256_of(&local), published.sha256);
}

#[tokio::test]
async fn a_managed_image_in_an_s3_region_is_a_source() {
    let Some(location) = server("IMAGEBUILDER_TEST_S3") else {
        return;
    };
    managed_image_in_a_remote_region_is_a_source(&location, "s3").await;
}

#[tokio::test]
async fn a_managed_image_in_an_azure_region_is_a_source() {
    let Some(location) = server("IMAGEBUILDER_TEST_AZURITE") else {
        return;
    };
    managed_image_in_a_remote_region_is_a_source(&location, "azure").await;
}
