//! One real QEMU build publishes a VHD, a managed image and a gallery version in three
//! regions from a single read of its capture; a second build boots from that version as
//! `latest` and finds the first build's change in it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use imagebuilder::core::engine::{Engine, RunOptions};
use imagebuilder::core::environment::Environment;
use imagebuilder::core::run::RunState;
use imagebuilder::core::source::SourceResolver;
use imagebuilder::dist::registry::{ImageDefinition, OsState};
use imagebuilder::dist::LocalTargets;
use imagebuilder::drivers::qemu::{Accelerator, QemuBuildHost, QemuConfig, VmShape};
use imagebuilder::template::model::{HyperVGeneration, OsType, SecurityType};
use imagebuilder::template::{parse_value, ImageTemplate, ParseOptions};
use serde_json::{json, Value};

const GALLERY: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/galleries/builds";
const IMAGE_ID: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/images/web";

fn template(properties: Value) -> ImageTemplate {
    let doc = json!({
        "type": "Microsoft.VirtualMachineImages/imageTemplates",
        "apiVersion": "2025-10-01",
        "name": "distribute-qemu",
        "properties": properties
    });
    let parsed =
        parse_value(&doc, &ParseOptions::default()).unwrap_or_else(|d| panic!("{:?}", d.all()));
    parsed.templates.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_capture_reaches_every_target_and_serves_the_next_build() {
    let Some(images) = std::env::var_os("IMAGEBUILDER_FIXTURE_IMAGES") else {
        eprintln!("skipped: IMAGEBUILDER_FIXTURE_IMAGES is not set; `bash scripts/test.sh` builds the fixture images and sets it");
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("distribute_qemu");
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::symlink(&images, state.join("images")).unwrap();
    let environment = Environment::embedded_default(&state);
    let targets = LocalTargets::new(&state, environment.clone());
    targets
        .galleries()
        .create_gallery(GALLERY, "eastus", "")
        .unwrap();
    targets
        .galleries()
        .define_image(ImageDefinition {
            id: format!("{GALLERY}/images/web"),
            publisher: "Contoso".into(),
            offer: "web".into(),
            sku: "1".into(),
            os_type: OsType::Linux,
            os_state: OsState::Generalized,
            hyper_v_generation: HyperVGeneration::V1,
            security_type: SecurityType::Standard,
            description: String::new(),
            created: String::new(),
        })
        .unwrap();
    let sockets = std::env::temp_dir().join(format!("ibq-{}-dist", std::process::id()));
    std::fs::create_dir_all(&sockets).unwrap();
    let host = QemuBuildHost::new(
        QemuConfig::default()
            .with_socket_dir(&sockets)
            .with_accelerator(Accelerator::Tcg)
            .with_shape(VmShape {
                cpus: 2,
                memory_mib: 1024,
            })
            .with_boot_timeout(Duration::from_secs(180)),
    );
    let source = SourceResolver::new(
        Arc::new(environment.catalog()),
        Arc::new(targets.managed_images().clone()),
        Arc::new(targets.galleries().clone()),
    );
    let engine = Engine::new(Arc::new(host), Arc::new(source), Arc::new(targets.clone()));

    let first = template(json!({
        "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12", "sku": "12", "version": "latest"},
        "customize": [{"type": "Shell", "name": "mark", "inline": ["echo first-build | sudo tee /etc/imagebuilder-marker"]}],
        "distribute": [
            {"type": "VHD", "runOutputName": "vhd"},
            {"type": "ManagedImage", "runOutputName": "managed", "imageId": IMAGE_ID, "location": "westus"},
            {"type": "SharedImage", "runOutputName": "gallery", "galleryImageId": format!("{GALLERY}/images/web"),
             "targetRegions": [{"name": "eastus"}, {"name": "westus", "replicaCount": 2}, {"name": "northeurope"}]}
        ]
    }));
    let report = engine.run(&first, RunOptions::new(dir.join("first"))).await;
    assert_eq!(report.run_state, RunState::Succeeded, "{}", report.message);
    assert_eq!(report.outputs.len(), 3);
    assert_eq!(
        targets.capture_reads(),
        1,
        "three targets, five outputs, one read of the capture"
    );
    let version = format!("{GALLERY}/images/web/versions/1.0.0");
    assert_eq!(report.outputs[2].artifact_id, version);
    let manifest = targets.galleries().version(&version).unwrap();
    assert_eq!(manifest.replicas.len(), 3);
    assert_eq!(
        targets.managed_images().get(IMAGE_ID).unwrap().location,
        "westus"
    );

    let second = template(json!({
        "source": {"type": "SharedImageVersion", "imageVersionId": format!("{GALLERY}/images/web/versions/latest")},
        "customize": [{"type": "Shell", "name": "check", "inline": ["grep -q first-build /etc/imagebuilder-marker"]}],
        "distribute": [{"type": "ObjectStore", "runOutputName": "object", "uri": format!("file://{}/objects/", dir.display()), "format": "qcow2"}]
    }));
    let report = engine
        .run(&second, RunOptions::new(dir.join("second")))
        .await;
    assert_eq!(report.run_state, RunState::Succeeded, "{}", report.message);
    assert_eq!(report.exact_version.as_deref(), Some("1.0.0"));
    assert_eq!(targets.capture_reads(), 2);
    assert!(dir.join("objects/object.qcow2").exists());
    assert!(
        std::fs::read_dir(&sockets).unwrap().next().is_none(),
        "no QMP socket left"
    );
    let _ = std::fs::remove_dir_all(&sockets);
    let _ = std::fs::remove_dir_all(&dir);
}
