//! `UploadSink` and `upload_file` against local files, memory, and a real S3 server (moto,
//! started by `scripts/storage-servers.sh`).

mod support;

use imagebuilder_dist::disk::OutputSink;
use imagebuilder_dist::store::{sink_for, upload_file, UploadSink};
use support::{exists, read_sha256, runtime, sparse_100_mib, unique, Sparse};

fn file_dir(test: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("store")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `output` to `url` through `sink_for` and checks what is read back.
fn upload_and_check(url: &str, output: &Sparse) {
    let rt = runtime();
    let sink = sink_for(url, Some(output.len), false, rt.handle().clone()).unwrap();
    output.write_to(sink).unwrap();
    let (sha256, size) = rt.block_on(read_sha256(url));
    assert_eq!(size, output.len);
    assert_eq!(sha256, output.sha256());
}

#[test]
#[cfg(feature = "s3")]
fn sparse_output_of_100_mib_uploads_to_s3() {
    let Some(bucket) = support::server("IMAGEBUILDER_TEST_S3") else {
        return;
    };
    let dir = format!("{bucket}/{}", unique("sparse"));
    let url = format!("{dir}/disk.raw");
    upload_and_check(&url, &sparse_100_mib());
    assert_eq!(runtime().block_on(support::list(&dir)), [url]);
}

#[test]
fn sparse_output_of_100_mib_uploads_to_a_file() {
    let dir = file_dir("sparse");
    let url = format!("file://{}/disk.raw", dir.display());
    upload_and_check(&url, &sparse_100_mib());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["disk.raw"], "no temporary file is left");
}

#[test]
fn output_uploads_to_memory() {
    let url = format!("memory:///{}/disk.raw", unique("memory"));
    let output = Sparse {
        len: 5 << 20,
        data: vec![(1 << 20, support::pattern(9, 4096))],
    };
    upload_and_check(&url, &output);
}

#[test]
#[cfg(feature = "azure")]
fn azure_block_blob_when_no_page_blob_is_asked_for() {
    let Some(container) = support::server("IMAGEBUILDER_TEST_AZURITE") else {
        return;
    };
    let url = format!("{container}/{}/disk.qcow2", unique("block"));
    let output = Sparse {
        len: 3 << 20,
        data: vec![
            (0, support::pattern(5, 100_000)),
            ((3 << 20) - 7, vec![1; 7]),
        ],
    };
    upload_and_check(&url, &output);
}

/// A write behind the previous one fails the upload; dropping the sink aborts it.
fn failed_upload_leaves_nothing(url: &str) {
    let rt = runtime();
    let mut sink = UploadSink::create(url, None, rt.handle().clone()).unwrap();
    // More than two parts, so some are uploaded before the failure.
    let piece = support::pattern(7, 2 << 20);
    for i in 0..20u64 {
        sink.write_at(i * (2 << 20), &piece).unwrap();
    }
    let error = sink.write_at(0, &piece).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    assert!(error.to_string().contains("in order"), "{error}");
    drop(sink);
    assert!(!rt.block_on(exists(url)));
}

#[test]
#[cfg(feature = "s3")]
fn failed_upload_to_s3_leaves_no_object() {
    let Some(bucket) = support::server("IMAGEBUILDER_TEST_S3") else {
        return;
    };
    let dir = format!("{bucket}/{}", unique("abort"));
    failed_upload_leaves_nothing(&format!("{dir}/disk.raw"));
    assert!(runtime().block_on(support::list(&dir)).is_empty());
}

#[test]
fn failed_upload_to_a_file_leaves_no_file() {
    let dir = file_dir("abort");
    failed_upload_leaves_nothing(&format!("file://{}/disk.raw", dir.display()));
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no temporary file is left"
    );
}

#[test]
#[cfg(feature = "s3")]
fn unfinished_upload_to_s3_is_aborted_on_drop() {
    let Some(bucket) = support::server("IMAGEBUILDER_TEST_S3") else {
        return;
    };
    let url = format!("{bucket}/{}/disk.raw", unique("drop"));
    let rt = runtime();
    let mut sink = sink_for(&url, None, false, rt.handle().clone()).unwrap();
    sink.write_at(0, &support::pattern(8, 2 << 20)).unwrap();
    drop(sink);
    assert!(!rt.block_on(exists(&url)));
}

#[test]
fn finishing_shorter_than_written_fails() {
    let dir = file_dir("short");
    let url = format!("file://{}/disk.raw", dir.display());
    let rt = runtime();
    let mut sink = sink_for(&url, None, false, rt.handle().clone()).unwrap();
    sink.write_at(0, &[1; 4096]).unwrap();
    let error = sink.finish(1024).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

fn upload_file_and_check(url: &str) {
    let dir = file_dir(&unique("upload-file"));
    let path = dir.join("disk.vhd");
    let content = support::pattern(11, (20 << 20) + 512);
    std::fs::write(&path, &content).unwrap();
    let rt = runtime();
    let mut seen = Vec::new();
    let sent = rt
        .block_on(upload_file(&path, url, |n| seen.push(n)))
        .unwrap();
    assert_eq!(sent, content.len() as u64);
    assert_eq!(seen.last(), Some(&sent));
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let (sha256, size) = rt.block_on(read_sha256(url));
    assert_eq!(size, sent);
    assert_eq!(
        sha256,
        rt.block_on(imagebuilder_core::artifacts::sha256_file(&path))
            .unwrap()
            .0
    );
}

#[test]
#[cfg(feature = "s3")]
fn upload_file_to_s3() {
    let Some(bucket) = support::server("IMAGEBUILDER_TEST_S3") else {
        return;
    };
    upload_file_and_check(&format!("{bucket}/{}/disk.vhd", unique("upload-file")));
}

#[test]
fn upload_file_to_a_file() {
    let dir = file_dir("upload-file-target");
    upload_file_and_check(&format!("file://{}/disk.vhd", dir.display()));
}

#[test]
fn unsupported_urls_are_refused_up_front() {
    let rt = runtime();
    let Err(error) = sink_for("ftp://host/x?sig=SECRET", None, false, rt.handle().clone()) else {
        panic!("ftp:// accepted");
    };
    let error = error.to_string();
    assert!(error.contains("ftp://host/x?<redacted>"), "{error}");
    assert!(!error.contains("SECRET"), "{error}");
}
