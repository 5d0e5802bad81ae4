//! `PageBlobSink` against a real Azure Blob service (Azurite, started by
//! `scripts/storage-servers.sh`).
#![cfg(feature = "azure")]

mod support;

use std::ops::Range;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use imagebuilder_dist::disk::OutputSink;
use imagebuilder_dist::store::{page_ranges, sink_for, PageBlobSink};
use sha2::Sha256;
use support::{list, pattern, read_sha256, runtime, server, sparse_100_mib, unique, Sparse};

/// Adjacent ranges as one (the service may split ranges at request boundaries).
fn merged(ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for range in ranges {
        match out.last_mut() {
            Some(last) if last.end == range.start => last.end = range.end,
            _ => out.push(range),
        }
    }
    out
}

/// A test directory in the Azurite container, or `None` (skipped).
fn azure_dir(test: &str) -> Option<String> {
    let container = server("IMAGEBUILDER_TEST_AZURITE")?;
    Some(format!("{container}/{}", unique(test)))
}

/// Checks that `url` (az://) holds `output` as a page blob with only its non-zero pages, and
/// that nothing else is in `dir`.
fn check_blob(dir: &str, url: &str, output: &Sparse) {
    let rt = runtime();
    let (sha256, size) = rt.block_on(read_sha256(url));
    assert_eq!(size, output.len, "the blob has the output's length");
    assert_eq!(sha256, output.sha256(), "the blob reads back as written");
    let ranges = rt.block_on(page_ranges(url)).unwrap();
    assert_eq!(
        merged(ranges),
        output.nonzero_pages(),
        "only non-zero pages are stored"
    );
    assert_eq!(rt.block_on(list(dir)), [url], "the partial blob is gone");
}

#[test]
fn sparse_vhd_lands_as_a_page_blob() {
    let Some(dir) = azure_dir("sparse") else {
        return;
    };
    let url = format!("{dir}/disk.vhd");
    let output = sparse_100_mib();
    let rt = runtime();
    let sink = sink_for(&url, Some(output.len), true, rt.handle().clone()).unwrap();
    output.write_to(sink).unwrap();
    check_blob(&dir, &url, &output);
}

#[test]
fn zero_pages_are_not_sent() {
    let Some(dir) = azure_dir("requests") else {
        return;
    };
    let url = format!("{dir}/disk.vhd");
    let rt = runtime();
    let mut sink = PageBlobSink::create(&url, 16 << 20, rt.handle().clone()).unwrap();
    // 4 MiB of zeros but for one page, then 4 MiB of zeros: one request for the first
    // 4 MiB, none for the second.
    let mut first = vec![0u8; 4 << 20];
    first[(1 << 20)..(1 << 20) + 512].copy_from_slice(&pattern(3, 512));
    sink.write_at(0, &first).unwrap();
    assert_eq!(sink.page_requests(), 1);
    sink.write_at(4 << 20, &vec![0; 4 << 20]).unwrap();
    assert_eq!(sink.page_requests(), 1);
    Box::new(sink).finish(16 << 20).unwrap();
    let output = Sparse {
        len: 16 << 20,
        data: vec![(0, first)],
    };
    check_blob(&dir, &url, &output);
}

#[test]
fn failure_mid_write_leaves_no_blob() {
    let Some(dir) = azure_dir("failure") else {
        return;
    };
    let url = format!("{dir}/disk.vhd");
    let rt = runtime();
    let mut sink = sink_for(&url, Some(8 << 20), true, rt.handle().clone()).unwrap();
    sink.write_at(0, &pattern(1, 5 << 20)).unwrap();
    assert_eq!(
        rt.block_on(list(&dir)).len(),
        1,
        "the partial blob exists while writing"
    );
    let error = sink.write_at(7 << 20, &pattern(2, 2 << 20)).unwrap_err();
    assert!(
        error.to_string().contains("past the page blob's length"),
        "{error}"
    );
    drop(sink);
    assert!(
        rt.block_on(list(&dir)).is_empty(),
        "the partial blob is deleted"
    );
}

#[test]
fn unfinished_sink_deletes_its_partial_blob() {
    let Some(dir) = azure_dir("drop") else {
        return;
    };
    let rt = runtime();
    let mut sink = sink_for(
        &format!("{dir}/disk.vhd"),
        Some(1 << 20),
        true,
        rt.handle().clone(),
    )
    .unwrap();
    sink.write_at(0, &pattern(1, 4096)).unwrap();
    drop(sink);
    assert!(rt.block_on(list(&dir)).is_empty());
}

#[test]
fn lengths_must_be_whole_pages() {
    let Some(dir) = azure_dir("length") else {
        return;
    };
    let url = format!("{dir}/disk.vhd");
    let rt = runtime();
    let Err(error) = PageBlobSink::create(&url, 1000, rt.handle().clone()) else {
        panic!("a length of 1000 was accepted");
    };
    assert!(error.to_string().contains("multiple of 512"), "{error}");
    let mut sink = sink_for(&url, Some(4096), true, rt.handle().clone()).unwrap();
    sink.write_at(0, &[1; 1000]).unwrap();
    let error = sink.finish(1000).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    assert!(rt.block_on(list(&dir)).is_empty(), "neither blob is left");
}

#[test]
fn finish_can_shrink_the_blob() {
    let Some(dir) = azure_dir("shrink") else {
        return;
    };
    let url = format!("{dir}/disk.vhd");
    let rt = runtime();
    let mut sink = sink_for(&url, Some(8 << 20), true, rt.handle().clone()).unwrap();
    let data = pattern(4, 3 << 20);
    sink.write_at(0, &data).unwrap();
    sink.finish(4 << 20).unwrap();
    check_blob(
        &dir,
        &url,
        &Sparse {
            len: 4 << 20,
            data: vec![(0, data)],
        },
    );
}

/// An account SAS for the blob service of the emulator's account (version 2019-02-02 string
/// to sign), signed with its well-known key.
fn account_sas(permissions: &str) -> String {
    let account = std::env::var("AZURE_STORAGE_ACCOUNT_NAME").unwrap();
    let key = STANDARD
        .decode(std::env::var("AZURE_STORAGE_ACCOUNT_KEY").unwrap())
        .unwrap();
    let (version, expiry) = ("2019-02-02", "2099-01-01T00:00:00Z");
    let to_sign =
        format!("{account}\n{permissions}\nb\nsco\n\n{expiry}\n\nhttps,http\n{version}\n");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let signature: String = url::form_urlencoded::byte_serialize(signature.as_bytes()).collect();
    format!("sv={version}&ss=b&srt=sco&sp={permissions}&se={expiry}&spr=https,http&sig={signature}")
}

/// The path-style emulator URL of an `az://` test blob.
fn emulator_url(az: &str) -> String {
    let base = std::env::var("AZURITE_BLOB_STORAGE_URL").unwrap();
    let account = std::env::var("AZURE_STORAGE_ACCOUNT_NAME").unwrap();
    format!("{base}/{account}/{}", az.trim_start_matches("az://"))
}

#[test]
fn sas_url_authorizes_the_upload() {
    let Some(dir) = azure_dir("sas") else {
        return;
    };
    let url = format!("{dir}/disk.vhd");
    let output = Sparse {
        len: 6 << 20,
        data: vec![
            (512, pattern(6, 3 << 20)),
            ((6 << 20) - 512, pattern(7, 512)),
        ],
    };
    let rt = runtime();
    let signed = format!("{}?{}", emulator_url(&url), account_sas("racwd"));
    let sink = sink_for(&signed, Some(output.len), true, rt.handle().clone()).unwrap();
    output.write_to(sink).unwrap();
    check_blob(&dir, &url, &output);
}

#[test]
fn errors_show_no_sas() {
    let Some(dir) = azure_dir("bad-sas") else {
        return;
    };
    let rt = runtime();
    // A SAS that cannot write: the service refuses the first request.
    let sas = account_sas("r");
    let signature = sas.rsplit_once("sig=").unwrap().1.to_owned();
    let signed = format!("{}?{sas}", emulator_url(&format!("{dir}/disk.vhd")));
    let Err(error) = sink_for(&signed, Some(4096), true, rt.handle().clone()) else {
        panic!("a read-only SAS created a blob");
    };
    let message = format!("{error} / {error:?}");
    assert!(message.contains("403"), "{message}");
    assert!(message.contains("disk.vhd?<redacted>"), "{message}");
    assert!(!message.contains(&signature), "{message}");
    let decoded: String = url::form_urlencoded::parse(format!("s={signature}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    assert!(!message.contains(&decoded), "{message}");
}
