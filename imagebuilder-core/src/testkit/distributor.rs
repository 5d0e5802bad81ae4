//! Contract checks for distributors.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::distribute::{CapturedImage, DistributeContext, Distributor};
use crate::template::model::{DiskFormat, HyperVGeneration, OsType, SecurityType};

/// Writes a small raw disk image (content varied by `seed`) under `dir` and describes it.
pub fn sample_image(dir: &Path, seed: u8) -> CapturedImage {
    std::fs::create_dir_all(dir).expect("the image dir can be created");
    let path: PathBuf = dir.join(format!("capture-{seed}.raw"));
    let mut bytes = vec![0u8; 1 << 20];
    for (i, b) in bytes.iter_mut().enumerate().take(4096) {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    std::fs::write(&path, &bytes).expect("write the sample image");
    CapturedImage {
        path,
        format: DiskFormat::Raw,
        virtual_size: bytes.len() as u64,
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        os_type: OsType::Linux,
        hyper_v_generation: HyperVGeneration::V2,
        security_type: SecurityType::Standard,
        source_version: None,
    }
}

fn context<'a>(
    dir: &'a Path,
    progress: &'a dyn crate::distribute::ProgressSink,
) -> DistributeContext<'a> {
    DistributeContext {
        template_name: "testkit",
        run_id: "testkit-run",
        staging_dir: dir,
        progress,
    }
}

/// Publishing returns a run output naming the target, with the published size, an artifact
/// id and a sha256 that is either absent (empty: a target that computes no digest) or 64
/// lower-case hex digits, and leaves the capture unchanged.
pub async fn publishes_and_keeps_the_capture(distributor: &dyn Distributor, dir: &Path) {
    let image = sample_image(&dir.join("publishes"), 1);
    let before = std::fs::read(&image.path).expect("read the capture");
    let progress = |_: &str, _: u64, _: u64| {};
    let output = distributor
        .distribute(&image, &context(dir, &progress))
        .await
        .unwrap_or_else(|e| panic!("distribute failed: {}", crate::error_chain(&e)));
    assert_eq!(
        output.run_output_name,
        distributor.run_output_name(),
        "runOutputName"
    );
    assert!(!output.artifact_id.is_empty(), "artifactId is set");
    assert!(output.size > 0, "size is set");
    assert!(
        output.sha256.is_empty()
            || (output.sha256.len() == 64
                && output
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))),
        "sha256 is empty or 64 lower-case hex digits: {:?}",
        output.sha256
    );
    assert!(
        std::fs::read(&image.path).expect("read the capture") == before,
        "the capture was modified"
    );
}

/// Progress never reports more than the total, and ends at the total.
pub async fn reports_progress_up_to_the_total(distributor: &dyn Distributor, dir: &Path) {
    let image = sample_image(&dir.join("progress"), 2);
    let seen = std::sync::Mutex::new(Vec::new());
    let progress = |name: &str, done: u64, total: u64| {
        seen.lock().unwrap().push((name.to_owned(), done, total))
    };
    distributor
        .distribute(&image, &context(dir, &progress))
        .await
        .unwrap_or_else(|e| panic!("distribute failed: {}", crate::error_chain(&e)));
    let seen = seen.into_inner().unwrap();
    assert!(!seen.is_empty(), "some progress was reported");
    for (name, done, total) in &seen {
        assert_eq!(
            name,
            distributor.run_output_name(),
            "progress names the target"
        );
        assert!(done <= total, "progress {done} exceeds total {total}");
    }
    let (_, done, total) = seen.last().expect("progress");
    assert_eq!(done, total, "progress ends at the total");
}

/// Publishing twice (two runs of one template) succeeds both times.
pub async fn publishes_again_in_a_later_run(distributor: &dyn Distributor, dir: &Path) {
    let progress = |_: &str, _: u64, _: u64| {};
    for seed in [3, 4] {
        let image = sample_image(&dir.join("again"), seed);
        distributor
            .distribute(&image, &context(dir, &progress))
            .await
            .unwrap_or_else(|e| {
                panic!("run {seed}: distribute failed: {}", crate::error_chain(&e))
            });
    }
}
