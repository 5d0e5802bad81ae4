//! `LocalTargets` on a real qcow2 capture: every target type from one read of the capture,
//! checked with qemu-img; failures and cancellation leave nothing half-published.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use futures::future::join_all;
use imagebuilder_core::distribute::{CapturedImage, DistributeContext, DistributorFactory};
use imagebuilder_core::environment::Environment;
use imagebuilder_core::template::model::{
    DiskFormat, DistributorSpec, HyperVGeneration, ManagedImageTarget, ObjectStoreTarget, OsType,
    OutputFormat, SecurityType, SharedImageTarget, StorageAccountType, TargetRegion, VhdTarget,
};
use imagebuilder_dist::registry::{ImageDefinition, OsState};
use imagebuilder_dist::LocalTargets;

mod support;

const GALLERY: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/galleries/g1";
const IMAGE_ID: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/images/web";

struct World {
    dir: PathBuf,
    targets: LocalTargets,
    image: CapturedImage,
}

fn qemu_img(args: &[&str]) -> String {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn same_disk(a: &Path, a_format: &str, b: &Path, b_format: &str) {
    qemu_img(&[
        "compare",
        "-f",
        a_format,
        "-F",
        b_format,
        &a.display().to_string(),
        &b.display().to_string(),
    ]);
}

/// A 64 MiB capture with data in three places, as qcow2, and targets over `regions/`.
fn world(name: &str, regions: BTreeMap<String, String>) -> World {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("local_targets")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("capture.raw");
    let file = std::fs::File::create(&raw).unwrap();
    file.set_len(64 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    for (i, offset) in [0u64, 5 << 20, (64 << 20) - 4096].into_iter().enumerate() {
        let block: Vec<u8> = (0..4096u32).map(|n| (n as u8) ^ (i as u8 + 1)).collect();
        file.write_all_at(&block, offset).unwrap();
    }
    let capture = dir.join("capture.qcow2");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "qcow2",
        &raw.display().to_string(),
        &capture.display().to_string(),
    ]);
    let regions = if regions.is_empty() {
        BTreeMap::from([(
            "*".to_owned(),
            format!("file://{}/regions/{{region}}", dir.display()),
        )])
    } else {
        regions
    };
    let environment = Environment {
        state_dir: Some(dir.join("state")),
        platform_images: Vec::new(),
        regions,
    };
    let targets = LocalTargets::new(&dir.join("state"), environment);
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
    let size = std::fs::metadata(&capture).unwrap().len();
    World {
        image: CapturedImage {
            path: capture,
            format: DiskFormat::Qcow2,
            virtual_size: 64 << 20,
            size,
            sha256: "0".repeat(64),
            os_type: OsType::Linux,
            hyper_v_generation: HyperVGeneration::V1,
            security_type: SecurityType::Standard,
            source_version: None,
        },
        dir,
        targets,
    }
}

/// `w` with targets whose environment has exactly `regions` (same registries).
fn with_regions(w: World, regions: BTreeMap<String, String>) -> World {
    let environment = Environment {
        state_dir: None,
        platform_images: Vec::new(),
        regions,
    };
    let targets = LocalTargets::with_registries(
        environment,
        w.targets.galleries().clone(),
        w.targets.managed_images().clone(),
    );
    World { targets, ..w }
}

fn every_kind(dir: &Path) -> Vec<DistributorSpec> {
    vec![
        DistributorSpec::Vhd(VhdTarget {
            run_output_name: "vhd".into(),
            artifact_tags: BTreeMap::new(),
            uri: String::new(),
            sha256: true,
        }),
        DistributorSpec::ManagedImage(ManagedImageTarget {
            run_output_name: "managed".into(),
            artifact_tags: BTreeMap::new(),
            image_id: IMAGE_ID.into(),
            location: "eastus".into(),
        }),
        DistributorSpec::SharedImage(SharedImageTarget {
            run_output_name: "gallery".into(),
            artifact_tags: BTreeMap::from([("team".to_owned(), "web".to_owned())]),
            gallery_image_id: format!("{GALLERY}/images/web"),
            target_regions: Some(
                ["eastus", "westus", "northeurope"]
                    .map(|name| TargetRegion {
                        name: name.into(),
                        replica_count: 2,
                        storage_account_type: StorageAccountType::StandardZrs,
                    })
                    .to_vec(),
            ),
            replication_regions: None,
            storage_account_type: None,
            exclude_from_latest: false,
            versioning: None,
            replication_mode: None,
            end_of_life_date: Some("2031-01-01".into()),
        }),
        DistributorSpec::ObjectStore(ObjectStoreTarget {
            run_output_name: "object".into(),
            artifact_tags: BTreeMap::new(),
            uri: format!("file://{}/objects/", dir.display()),
            format: OutputFormat::VhdDynamic,
            sha256: false,
        }),
    ]
}

/// Runs every target of `specs` concurrently, as the engine does.
async fn distribute(
    w: &World,
    specs: &[DistributorSpec],
) -> Vec<Result<imagebuilder_core::run::RunOutput, String>> {
    let refs: Vec<&DistributorSpec> = specs.iter().collect();
    let made = w.targets.distributors(&refs);
    let staging = w.dir.join("staging");
    let progress = |_: &str, _: u64, _: u64| {};
    let cx = DistributeContext {
        template_name: "t",
        run_id: "run-1",
        staging_dir: &staging,
        progress: &progress,
    };
    let jobs = made.into_iter().map(|d| {
        let (image, cx) = (&w.image, &cx);
        async move {
            let d = d.map_err(|e| e.to_string())?;
            d.distribute(image, cx)
                .await
                .map_err(|e| imagebuilder_core::error_chain(&e))
        }
    });
    join_all(jobs).await
}

fn path_of(uri: &str) -> PathBuf {
    PathBuf::from(uri.strip_prefix("file://").expect("a file URI"))
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_from_one_read_of_the_capture() {
    let w = world("every", BTreeMap::new());
    let results = distribute(&w, &every_kind(&w.dir)).await;
    let outputs: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(
        w.targets.capture_reads(),
        1,
        "four targets, five outputs, one read"
    );

    let vhd = path_of(&outputs[0].artifact_uri);
    assert!(
        vhd.starts_with(w.dir.join("staging/outputs/run-1")),
        "{}",
        vhd.display()
    );
    same_disk(&w.image.path, "qcow2", &vhd, "vpc");
    assert_eq!(std::fs::metadata(&vhd).unwrap().len(), (64 << 20) + 512);
    assert_eq!(outputs[0].sha256, sha256(&vhd));

    let managed = w.targets.managed_images().get(IMAGE_ID).unwrap();
    assert_eq!(outputs[1].artifact_id, IMAGE_ID);
    assert_eq!(managed.location, "eastus");
    let disk = path_of(&managed.uri);
    assert!(
        disk.starts_with(w.dir.join("regions/eastus/managed-images")),
        "{}",
        disk.display()
    );
    same_disk(&w.image.path, "qcow2", &disk, "qcow2");
    assert_eq!(managed.sha256, sha256(&disk));

    assert_eq!(
        outputs[2].artifact_id,
        format!("{GALLERY}/images/web/versions/1.0.0")
    );
    let versions = w
        .targets
        .galleries()
        .versions(&format!("{GALLERY}/images/web"))
        .unwrap();
    assert_eq!(versions.len(), 1);
    let manifest = &versions[0];
    assert_eq!(manifest.end_of_life_date.as_deref(), Some("2031-01-01"));
    assert_eq!(manifest.tags["team"], "web");
    let regions: Vec<&str> = manifest
        .replicas
        .iter()
        .map(|r| r.region.as_str())
        .collect();
    assert_eq!(regions, ["eastus", "westus", "northeurope"]);
    for replica in &manifest.replicas {
        let file = path_of(&replica.uri);
        assert!(file.starts_with(w.dir.join("regions").join(&replica.region)));
        same_disk(&w.image.path, "qcow2", &file, "qcow2");
        assert_eq!(replica.sha256, sha256(&file));
        assert_eq!(replica.replica_count, 2);
    }

    let object = path_of(&outputs[3].artifact_uri);
    assert_eq!(object, w.dir.join("objects/object.vhd"));
    assert_eq!(
        outputs[3].sha256, "",
        "a digest only when the target asks for one"
    );
    same_disk(&w.image.path, "qcow2", &object, "vpc");
    let info = qemu_img(&[
        "info",
        "--output=json",
        "-f",
        "vpc",
        &object.display().to_string(),
    ]);
    assert!(info.contains("\"virtual-size\": 67108864"), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_publishes_the_next_version_and_refuses_to_replace_the_image() {
    let w = world("second", BTreeMap::new());
    let specs = every_kind(&w.dir);
    for r in distribute(&w, &specs).await {
        r.unwrap();
    }
    let managed_before = w.targets.managed_images().get(IMAGE_ID).unwrap();
    let results = distribute(&w, &specs).await;
    assert_eq!(w.targets.capture_reads(), 2);
    let refused = results[1].as_ref().unwrap_err();
    assert!(refused.contains("already exists"), "{refused}");
    assert_eq!(
        w.targets.managed_images().get(IMAGE_ID).unwrap(),
        managed_before
    );
    assert_eq!(
        results[2].as_ref().unwrap().artifact_id,
        format!("{GALLERY}/images/web/versions/1.0.1")
    );
    assert!(results[0].is_ok() && results[3].is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_fails_leaves_the_others_and_nothing_partial() {
    // Only eastus has a store: the gallery's other regions are unknown.
    let w = world("fails", BTreeMap::new());
    let regions = BTreeMap::from([(
        "eastus".to_owned(),
        format!("file://{}/regions/eastus", w.dir.display()),
    )]);
    let w = with_regions(w, regions);
    let results = distribute(&w, &every_kind(&w.dir)).await;
    let err = results[2].as_ref().unwrap_err();
    assert!(
        err.contains("targetRegions[1]: region 'westus' has no object store"),
        "{err}"
    );
    assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
    assert_eq!(w.targets.capture_reads(), 1);
    assert!(w
        .targets
        .galleries()
        .versions(&format!("{GALLERY}/images/web"))
        .unwrap()
        .is_empty());
    let leftovers: Vec<_> = walk(&w.dir)
        .into_iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            name.contains(".partial") || name.ends_with(".pending") || name.contains("spool")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_distribution_publishes_nothing() {
    let w = world("cancel", BTreeMap::new());
    let specs = every_kind(&w.dir);
    // Dropped as soon as it starts writing.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(1), distribute(&w, &specs)).await;
    // Writers notice the cancel between chunks; give them a moment to clean up.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(w
        .targets
        .galleries()
        .versions(&format!("{GALLERY}/images/web"))
        .unwrap()
        .is_empty());
    assert!(w.targets.managed_images().get(IMAGE_ID).is_err());
    let leftovers: Vec<_> = walk(&w.dir)
        .into_iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            name.contains(".partial") || name.ends_with(".pending")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // And the next run works.
    for r in distribute(&w, &specs).await {
        r.unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(walk(&path));
            }
            found.push(path);
        }
    }
    found
}

/// A gallery whose two regions live in two different servers (moto's S3 and Azurite), and
/// a VHD that lands in Azurite as a page blob; the account key never shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg(all(feature = "s3", feature = "azure"))]
async fn regions_in_two_stores_and_a_page_blob_vhd() {
    let (Some(azure), Some(s3)) = (
        support::server("IMAGEBUILDER_TEST_AZURITE"),
        support::server("IMAGEBUILDER_TEST_S3"),
    ) else {
        return;
    };
    let prefix = support::unique("targets");
    let regions = BTreeMap::from([
        ("east".to_owned(), format!("{s3}/{prefix}/east")),
        ("west".to_owned(), format!("{azure}/{prefix}/west")),
    ]);
    let w = world("remote", regions);
    let mut specs = every_kind(&w.dir);
    specs[0] = DistributorSpec::Vhd(VhdTarget {
        run_output_name: "vhd".into(),
        artifact_tags: BTreeMap::new(),
        uri: format!("{azure}/{prefix}/image.vhd"),
        sha256: true,
    });
    let DistributorSpec::SharedImage(gallery) = &mut specs[2] else {
        unreachable!()
    };
    gallery.target_regions = Some(
        ["east", "west"]
            .map(|name| TargetRegion {
                name: name.into(),
                replica_count: 1,
                storage_account_type: StorageAccountType::StandardLrs,
            })
            .to_vec(),
    );
    specs[1] = DistributorSpec::ManagedImage(ManagedImageTarget {
        run_output_name: "managed".into(),
        artifact_tags: BTreeMap::new(),
        image_id: IMAGE_ID.into(),
        location: "east".into(),
    });
    specs.truncate(3);
    let results = distribute(&w, &specs).await;
    let outputs: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(w.targets.capture_reads(), 1);

    let vhd_url = format!("{azure}/{prefix}/image.vhd");
    let (sha256, size) = support::read_sha256(&vhd_url).await;
    assert_eq!(size, (64 << 20) + 512);
    assert_eq!(
        (outputs[0].sha256.as_str(), outputs[0].size),
        (sha256.as_str(), size)
    );
    let pages = imagebuilder_dist::store::page_ranges(&vhd_url)
        .await
        .unwrap();
    assert!(
        !pages.is_empty(),
        "a page blob, with pages where the disk has data"
    );
    let written: u64 = pages.iter().map(|r| r.end - r.start).sum();
    assert!(
        written < 8 << 20,
        "zero pages were skipped: {written} bytes written"
    );

    let manifest = &w
        .targets
        .galleries()
        .versions(&format!("{GALLERY}/images/web"))
        .unwrap()[0];
    for (replica, base) in manifest.replicas.iter().zip([&s3, &azure]) {
        assert!(replica.uri.starts_with(base.as_str()), "{}", replica.uri);
        assert_eq!(support::read_sha256(&replica.uri).await.0, replica.sha256);
    }
    let managed = w.targets.managed_images().get(IMAGE_ID).unwrap();
    assert!(managed.uri.starts_with(&s3));
    assert_eq!(support::read_sha256(&managed.uri).await.0, managed.sha256);

    let key = std::env::var("AZURE_STORAGE_ACCOUNT_KEY").unwrap_or_default();
    let everything = format!("{outputs:?} {manifest:?} {managed:?}");
    assert!(
        key.len() > 8 && !everything.contains(&key),
        "the account key never shows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_that_cannot_be_written_takes_the_other_replicas_with_it() {
    let w = world("region-fails", BTreeMap::new());
    let regions = BTreeMap::from([
        (
            "eastus".to_owned(),
            format!("file://{}/regions/eastus", w.dir.display()),
        ),
        // A path under a file: nothing can be created there.
        ("westus".to_owned(), "file:///dev/null/westus".to_owned()),
        (
            "northeurope".to_owned(),
            format!("file://{}/regions/northeurope", w.dir.display()),
        ),
    ]);
    let w = with_regions(w, regions);
    let specs = every_kind(&w.dir);
    let results = distribute(&w, &specs[2..3]).await;
    let err = results[0].as_ref().unwrap_err();
    assert!(
        err.contains("to region westus"),
        "the failing region is named: {err}"
    );
    assert!(
        !err.contains("canceled"),
        "the cause, not the cancel it caused: {err}"
    );
    assert!(w
        .targets
        .galleries()
        .versions(&format!("{GALLERY}/images/web"))
        .unwrap()
        .is_empty());
    let replicas: Vec<_> = walk(&w.dir.join("regions"))
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(
        replicas.is_empty(),
        "no replica outlives a failed version: {replicas:?}"
    );
}
