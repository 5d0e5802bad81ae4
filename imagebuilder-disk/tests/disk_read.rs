//! Our readers against images qemu-img made: the virtual size qemu reports, and a chunk stream
//! that holds the same disk (checked byte for byte, and by `qemu-img compare` after writing it
//! out).

mod disk_support;

use std::path::Path;

use disk_support::*;
use imagebuilder_core::template::model::DiskFormat;
use imagebuilder_disk::{convert, open_reader, ChunkData, OutputFormat, MAX_CHUNK};

/// 96 MiB with noise at scattered places and a compressible MiB, so `-c` has work to do.
fn source(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.join("source.raw");
    sparse_raw(&path, 96 * MIB, &scattered(96 * MIB));
    let text: Vec<u8> = b"imagebuilder reads qcow2. "
        .iter()
        .copied()
        .cycle()
        .take(MIB as usize)
        .collect();
    std::os::unix::fs::FileExt::write_all_at(
        &std::fs::File::options().write(true).open(&path).unwrap(),
        &text,
        40 * MIB + 1024,
    )
    .unwrap();
    path
}

/// Reads `image` with our reader and checks the stream against `expected`, the raw disk.
fn assert_reads_as(image: &Path, format: DiskFormat, expected: &[u8]) {
    let mut reader = open_reader(image, format).unwrap();
    let size = reader.virtual_size();
    // qemu's own view of the size.
    assert_eq!(info(image, format.qemu_name())["virtual-size"], size);
    assert!(size as usize >= expected.len());
    let mut at = 0u64;
    while let Some(chunk) = reader.next_chunk().unwrap() {
        assert_eq!(chunk.offset, at, "no gaps or overlaps");
        assert!(!chunk.is_empty());
        let range = at as usize..chunk.end() as usize;
        let want = |r: std::ops::Range<usize>| {
            let mut v = vec![0u8; r.len()];
            let known = r.start.min(expected.len())..r.end.min(expected.len());
            v[..known.len()].copy_from_slice(&expected[known]);
            v
        };
        match &chunk.data {
            ChunkData::Data(bytes) => {
                assert!(bytes.len() <= MAX_CHUNK);
                assert!(bytes[..] == want(range)[..], "data at {at}");
            }
            ChunkData::Zero(_) => assert!(want(range).iter().all(|&b| b == 0), "zeros at {at}"),
        }
        at = chunk.end();
    }
    assert_eq!(at, size, "the stream covers the disk");
}

fn case(name: &str, qemu_format: &str, options: &[&str], compress: bool) {
    let dir = TempDir::new(&format!("read-{name}"));
    let source = source(&dir);
    let image = dir.join("image");
    let mut args = vec!["convert", "-q", "-f", "raw", "-O", qemu_format];
    if compress {
        args.push("-c");
    }
    for option in options {
        args.extend(["-o", option]);
    }
    args.extend([source.to_str().unwrap(), image.to_str().unwrap()]);
    qemu_img(&args);
    let format = if qemu_format == "vpc" {
        DiskFormat::Vhd
    } else {
        DiskFormat::Qcow2
    };
    assert_reads_as(&image, format, &std::fs::read(&source).unwrap());

    let raw = dir.join("out.raw");
    convert(&image, format, &raw, OutputFormat::Raw, &mut |_, _| {}).unwrap();
    assert_identical(&image, qemu_format, &raw, "raw");
}

#[test]
fn qcow2_with_512_byte_clusters() {
    case("qcow2-512", "qcow2", &["cluster_size=512"], false);
}

#[test]
fn qcow2_with_64_kib_clusters() {
    case("qcow2-64k", "qcow2", &[], false);
}

#[test]
fn qcow2_with_2_mib_clusters() {
    case("qcow2-2m", "qcow2", &["cluster_size=2M"], false);
}

#[test]
fn qcow2_compressed() {
    case("qcow2-c", "qcow2", &[], true);
}

#[test]
fn qcow2_compressed_with_512_byte_clusters() {
    case("qcow2-c-512", "qcow2", &["cluster_size=512"], true);
}

#[test]
fn qcow2_compressed_with_2_mib_clusters() {
    case("qcow2-c-2m", "qcow2", &["cluster_size=2M"], true);
}

#[test]
fn qcow2_version_2() {
    case("qcow2-v2", "qcow2", &["compat=0.10"], false);
}

#[test]
fn qcow2_version_2_compressed() {
    case("qcow2-v2-c", "qcow2", &["compat=0.10"], true);
}

#[test]
fn vhd_fixed() {
    case("vpc-fixed", "vpc", &["subformat=fixed"], false);
}

#[test]
fn vhd_dynamic_sized_by_its_geometry() {
    // qemu's creator "qemu": the size is what the CHS geometry covers, as qemu reads it.
    case("vpc-dynamic", "vpc", &[], false);
}

#[test]
fn vhd_dynamic_sized_by_current_size() {
    case("vpc-force-size", "vpc", &["force_size=on"], false);
}

#[test]
fn qcow2_zero_clusters_read_as_zeros() {
    // Zeroing allocated clusters in a v3 image sets their zero flag and keeps their offsets.
    let dir = TempDir::new("read-zero-flag");
    let source = source(&dir);
    let image = dir.join("image.qcow2");
    qemu_img(&[
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "qcow2",
        source.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    let output = std::process::Command::new("qemu-io")
        .args([
            "-f",
            "qcow2",
            "-c",
            "write -z 32M 1M",
            image.to_str().unwrap(),
        ])
        .output()
        .expect("run qemu-io (qemu-utils)");
    assert!(output.status.success(), "{output:?}");
    let map = qemu_img(&[
        "map",
        "--output=json",
        "-f",
        "qcow2",
        image.to_str().unwrap(),
    ]);
    assert!(
        map.contains(&format!(
            "\"start\": {}, \"length\": {}, \"depth\": 0, \"present\": true, \"zero\": true",
            32 * MIB,
            MIB
        )),
        "{map}"
    );
    let mut expected = std::fs::read(&source).unwrap();
    expected[32 * MIB as usize..33 * MIB as usize].fill(0);
    assert_reads_as(&image, DiskFormat::Qcow2, &expected);
}

#[test]
fn an_8_gib_sparse_qcow2_with_small_clusters_streams_quickly() {
    // 512-byte clusters: a 2 MiB L1 table, each entry 32 KiB of disk.
    let dir = TempDir::new("read-8g");
    let raw = dir.join("in.raw");
    sparse_raw(&raw, 8 * GIB, &scattered(8 * GIB));
    let image = dir.join("in.qcow2");
    qemu_img(&[
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "qcow2",
        "-o",
        "cluster_size=512",
        raw.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    let out = dir.join("out.qcow2");
    let converted = convert(
        &image,
        DiskFormat::Qcow2,
        &out,
        OutputFormat::Qcow2,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(converted.virtual_size, 8 * GIB);
    assert_identical(&raw, "raw", &out, "qcow2");
}
