//! The VHD distributor passes the distributor contract checks, and writes what Azure accepts:
//! a fixed VHD whose virtual size is a whole MiB, readable by qemu-img with the same content.

use std::path::PathBuf;
use std::process::Command;

use imagebuilder_core::testkit::distributor;
use imagebuilder_dist::VhdDistributor;

fn dir(check: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("vhd")
        .join(check);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn publishes_and_keeps_the_capture() {
    distributor::publishes_and_keeps_the_capture(
        &VhdDistributor::new("vhd", "", Default::default()),
        &dir("publishes"),
    )
    .await;
}

#[tokio::test]
async fn publishes_and_keeps_the_capture_with_its_digest() {
    distributor::publishes_and_keeps_the_capture(
        &VhdDistributor::new("vhd", "", Default::default()).with_sha256(true),
        &dir("publishes-digest"),
    )
    .await;
}

#[tokio::test]
async fn reports_progress_up_to_the_total() {
    distributor::reports_progress_up_to_the_total(
        &VhdDistributor::new("vhd", "", Default::default()),
        &dir("progress"),
    )
    .await;
}

#[tokio::test]
async fn publishes_again_in_a_later_run() {
    distributor::publishes_again_in_a_later_run(
        &VhdDistributor::new("vhd", "", Default::default()),
        &dir("again"),
    )
    .await;
}

#[tokio::test]
async fn writes_a_fixed_vhd_of_whole_mib_with_the_same_content() {
    let dir = dir("fixed");
    let mut image = distributor::sample_image(&dir, 9);
    // An odd size, as a raw image from elsewhere may have.
    let bytes = std::fs::read(&image.path).unwrap();
    std::fs::write(&image.path, &bytes[..bytes.len() - 512]).unwrap();
    image.virtual_size -= 512;
    let target = dir.join("out").join("disk.vhd");
    let vhd = VhdDistributor::new(
        "vhd",
        &format!("file://{}", target.display()),
        Default::default(),
    );
    let progress = |_: &str, _: u64, _: u64| {};
    let cx = imagebuilder_core::distribute::DistributeContext {
        template_name: "t",
        run_id: "r",
        staging_dir: &dir,
        progress: &progress,
    };
    let output = imagebuilder_core::distribute::Distributor::distribute(&vhd, &image, &cx)
        .await
        .unwrap();
    assert_eq!(output.artifact_uri, format!("file://{}", target.display()));
    // qemu-img probes a fixed VHD as raw (its only signature is the footer): name the format.
    let info = Command::new("qemu-img")
        .args(["info", "-f", "vpc", "--output=json"])
        .arg(&target)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["format"], "vpc");
    assert_eq!(
        info["virtual-size"].as_u64().unwrap() % (1 << 20),
        0,
        "whole MiB"
    );
    let file = std::fs::read(&target).unwrap();
    assert_eq!(
        file.len(),
        (1 << 20) + 512,
        "fixed VHD: data plus a 512-byte footer"
    );
    assert_eq!(
        &file[file.len() - 512..][..8],
        b"conectix",
        "the footer's cookie"
    );
    // Non-strict compare: the VHD is the image followed by zeros up to the whole MiB.
    let status = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "vpc"])
        .arg(&image.path)
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success(), "same content");
}
