//! Our four output formats, checked against qemu-img: same format and virtual size, the same
//! disk (`qemu-img compare`), clean (`qemu-img check` for qcow2; qemu has no check for vpc, so
//! the VHD's footer, header and BAT are checked here), sparse where the disk is zero, and
//! `sha256_file` (holes hashed without being read) agrees with `sha256sum`.

mod disk_support;

use std::path::Path;

use disk_support::*;
use imagebuilder_core::template::model::DiskFormat;
use imagebuilder_disk::{convert, sha256_file, Converted, FormatLayout, OutputFormat};

fn qemu_name(format: OutputFormat) -> &'static str {
    format.disk_format().qemu_name()
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// The VHD checksum, computed here independently of the crate.
fn vhd_checksum(b: &[u8], field: usize) -> u32 {
    let mut sum = 0u32;
    for (i, &byte) in b.iter().enumerate() {
        if i < field || i >= field + 4 {
            sum = sum.wrapping_add(u32::from(byte));
        }
    }
    !sum
}

/// Checks the VHD footer at the end (and for a dynamic VHD its copy, header and BAT).
fn check_vhd(path: &Path, format: OutputFormat, virtual_size: u64) {
    let bytes_len = std::fs::metadata(path).unwrap().len();
    let file = std::fs::File::open(path).unwrap();
    let read = |at: u64, len: usize| {
        let mut buf = vec![0; len];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, at).unwrap();
        buf
    };
    let footer = read(bytes_len - 512, 512);
    assert_eq!(&footer[0..8], b"conectix");
    assert_eq!(be32(&footer, 8), 2, "features");
    assert_eq!(be32(&footer, 12), 0x0001_0000, "version");
    assert_eq!(
        be32(&footer, 64),
        vhd_checksum(&footer, 64),
        "footer checksum"
    );
    assert_eq!(be64(&footer, 40), virtual_size, "original size");
    assert_eq!(be64(&footer, 48), virtual_size, "current size");
    assert_eq!(footer[84], 0, "saved state");
    assert!(footer[68..84].iter().any(|&b| b != 0), "unique id");
    match format {
        OutputFormat::VhdFixed => {
            assert_eq!(be64(&footer, 16), u64::MAX, "data offset");
            assert_eq!(be32(&footer, 60), 2, "disk type");
            assert_eq!(virtual_size % MIB, 0, "a whole MiB");
            assert_eq!(bytes_len, virtual_size + 512, "N MiB + 512");
        }
        OutputFormat::VhdDynamic => {
            assert_eq!(be32(&footer, 60), 3, "disk type");
            assert_eq!(read(0, 512), footer, "the footer copy at 0");
            assert_eq!(be64(&footer, 16), 512, "data offset");
            let header = read(512, 1024);
            assert_eq!(&header[0..8], b"cxsparse");
            assert_eq!(
                be32(&header, 36),
                vhd_checksum(&header, 36),
                "header checksum"
            );
            let table = be64(&header, 16);
            let entries = be32(&header, 28) as u64;
            let block = be32(&header, 32) as u64;
            assert_eq!(block, 2 * MIB);
            assert_eq!(entries, virtual_size.div_ceil(block));
            let bat = read(table, entries as usize * 4);
            for entry in bat.chunks_exact(4) {
                let entry = be32(entry, 0);
                if entry != u32::MAX {
                    let at = u64::from(entry) * 512;
                    assert!(at + 512 + block <= bytes_len - 512, "block inside the file");
                    assert!(read(at, 512).iter().all(|&b| b == 0xff), "sector bitmap");
                }
            }
        }
        _ => unreachable!(),
    }
}

/// Converts the raw `input` to `format` and checks the result with qemu-img.
fn convert_and_check(dir: &TempDir, input: &Path, format: OutputFormat) -> Converted {
    let input_size = std::fs::metadata(input).unwrap().len();
    let output = dir.join(&format!("out.{}", format.extension()));
    let mut last = (0, 0);
    let converted = convert(
        input,
        DiskFormat::Raw,
        &output,
        format,
        &mut |done, total| {
            assert!(done >= last.0 && done <= total);
            last = (done, total);
        },
    )
    .unwrap();
    assert_eq!(last, (input_size, input_size), "progress reaches the end");
    assert_eq!(converted.virtual_size, format.virtual_size(input_size));
    assert_eq!(converted.size, std::fs::metadata(&output).unwrap().len());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let info = info(&output, qemu_name(format));
    assert_eq!(info["format"], qemu_name(format));
    assert_eq!(info["virtual-size"], converted.virtual_size, "{info}");
    if format == OutputFormat::VhdFixed {
        assert_eq!(converted.virtual_size % MIB, 0);
    }
    assert_identical(input, "raw", &output, qemu_name(format));
    match format {
        OutputFormat::Qcow2 => {
            assert_check_clean(&output, "qcow2");
            assert_eq!(info["format-specific"]["data"]["compat"], "1.1");
            assert_eq!(info["cluster-size"], 65536);
        }
        OutputFormat::VhdFixed | OutputFormat::VhdDynamic => {
            check_vhd(&output, format, converted.virtual_size)
        }
        OutputFormat::Raw => {}
    }
    // Our own reader agrees with what we wrote.
    let back = dir.join("back.qcow2");
    let reread = convert(
        &output,
        format.disk_format(),
        &back,
        OutputFormat::Qcow2,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(reread.virtual_size, converted.virtual_size);
    assert_identical(input, "raw", &back, "qcow2");
    std::fs::remove_file(&back).unwrap();
    converted
}

/// The output takes about the data's room, not the disk's.
fn assert_sparse(output: &Path, data: u64, places: usize) {
    // Each place may allocate a whole 2 MiB VHD block at either end; tables take a little.
    let bound = data + places as u64 * 2 * (2 * MIB + 512) + MIB;
    let used = allocated(output);
    assert!(
        used <= bound,
        "{}: {used} bytes allocated for {data} bytes of data",
        output.display()
    );
}

fn sparse(name: &str, size: u64, format: OutputFormat) {
    let dir = TempDir::new(name);
    let input = dir.join("in.raw");
    let places = scattered(size);
    let data = sparse_raw(&input, size, &places);
    let converted = convert_and_check(&dir, &input, format);
    assert_sparse(
        &dir.join(&format!("out.{}", format.extension())),
        data,
        places.len(),
    );
    if format == OutputFormat::Qcow2 || format == OutputFormat::VhdDynamic {
        assert!(converted.size < 64 * MIB, "{converted:?}");
    }
}

/// The sha256 of a disk of `size` bytes holding the noise of [`sparse_raw`] at `places`,
/// zeros up to `padded`, then `trailer`: computed here, from the layout, not from a file.
fn expected_sha256(size: u64, places: &[(u64, usize)], padded: u64, trailer: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let zeros = vec![0u8; MIB as usize];
    let mut hasher = Sha256::new();
    let zeros_to = |hasher: &mut Sha256, from: u64, to: u64| {
        let mut at = from;
        while at < to {
            let n = (to - at).min(MIB) as usize;
            hasher.update(&zeros[..n]);
            at += n as u64;
        }
    };
    let mut at = 0;
    for (i, &(offset, len)) in places.iter().enumerate() {
        zeros_to(&mut hasher, at, offset);
        hasher.update(noise(i as u64 + 1, len));
        at = offset + len as u64;
    }
    zeros_to(&mut hasher, at, size.max(padded));
    hasher.update(trailer);
    hex::encode(hasher.finalize())
}

#[test]
fn sparse_8_gib_to_raw() {
    sparse("sparse-raw", 8 * GIB, OutputFormat::Raw);
}

#[test]
fn sparse_8_gib_to_qcow2() {
    sparse("sparse-qcow2", 8 * GIB, OutputFormat::Qcow2);
}

#[test]
fn sparse_8_gib_to_fixed_vhd() {
    sparse("sparse-vhd", 8 * GIB, OutputFormat::VhdFixed);
}

#[test]
fn sparse_8_gib_to_dynamic_vhd() {
    sparse("sparse-vhd-dynamic", 8 * GIB, OutputFormat::VhdDynamic);
}

/// 1 GiB + 4 KiB: not a whole MiB, and small enough to hash twice in a test.
const UNALIGNED: u64 = GIB + 4096;

#[test]
fn unaligned_size_to_raw_hashes_the_holes_as_zeros() {
    let dir = TempDir::new("unaligned-raw");
    let input = dir.join("in.raw");
    let places = scattered(UNALIGNED);
    let data = sparse_raw(&input, UNALIGNED, &places);
    convert_and_check(&dir, &input, OutputFormat::Raw);
    let output = dir.join("out.raw");
    assert_sparse(&output, data, places.len());
    assert_eq!(
        sha256_file(&output).unwrap(),
        expected_sha256(UNALIGNED, &places, 0, &[])
    );
}

#[test]
fn unaligned_size_to_qcow2() {
    sparse("unaligned-qcow2", UNALIGNED, OutputFormat::Qcow2);
}

#[test]
fn unaligned_size_to_fixed_vhd_rounds_up_to_a_mib() {
    let dir = TempDir::new("unaligned-vhd");
    let input = dir.join("in.raw");
    let places = scattered(UNALIGNED);
    let data = sparse_raw(&input, UNALIGNED, &places);
    let converted = convert_and_check(&dir, &input, OutputFormat::VhdFixed);
    assert_eq!(converted.virtual_size, GIB + MIB);
    assert_eq!(converted.size, GIB + MIB + 512);
    let output = dir.join("out.vhd");
    assert_sparse(&output, data, places.len());
    let mut footer = vec![0; 512];
    let file = std::fs::File::open(&output).unwrap();
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut footer, GIB + MIB).unwrap();
    assert_eq!(
        sha256_file(&output).unwrap(),
        expected_sha256(UNALIGNED, &places, GIB + MIB, &footer)
    );
}

#[test]
fn unaligned_size_to_dynamic_vhd() {
    sparse("unaligned-vhd-dynamic", UNALIGNED, OutputFormat::VhdDynamic);
}

fn dense(name: &str, format: OutputFormat) {
    let dir = TempDir::new(name);
    let input = dir.join("in.raw");
    std::fs::write(&input, noise(99, 64 * MIB as usize)).unwrap();
    convert_and_check(&dir, &input, format);
    let output = dir.join(&format!("out.{}", format.extension()));
    assert_eq!(sha256_file(&output).unwrap(), sha256sum(&output));
}

#[test]
fn dense_64_mib_to_raw() {
    dense("dense-raw", OutputFormat::Raw);
}

#[test]
fn dense_64_mib_to_qcow2() {
    dense("dense-qcow2", OutputFormat::Qcow2);
}

#[test]
fn dense_64_mib_to_fixed_vhd() {
    dense("dense-vhd", OutputFormat::VhdFixed);
}

#[test]
fn dense_64_mib_to_dynamic_vhd() {
    dense("dense-vhd-dynamic", OutputFormat::VhdDynamic);
}

#[test]
fn a_small_odd_sized_disk_converts_to_every_format() {
    // 1000 bytes: not even a sector; qemu sees the padded sector for all but raw.
    for format in OutputFormat::ALL {
        let dir = TempDir::new(&format!("tiny-{format}"));
        let input = dir.join("in.raw");
        std::fs::write(&input, noise(5, 1000)).unwrap();
        let output = dir.join("out");
        let converted = convert(&input, DiskFormat::Raw, &output, format, &mut |_, _| {}).unwrap();
        // qemu counts whole sectors, even of a raw file.
        let qemu_size = converted.virtual_size.div_ceil(512) * 512;
        assert_eq!(info(&output, qemu_name(format))["virtual-size"], qemu_size);
        assert_identical(&input, "raw", &output, qemu_name(format));
        assert_eq!(sha256_file(&output).unwrap(), sha256sum(&output));
    }
}

#[test]
fn a_2_tib_sparse_disk_converts_with_bounded_memory_and_time() {
    // Per-cluster state for 2 TiB would be 256 MiB of L2 tables; the writers keep one.
    let size = 2000 * GIB; // under dynamic VHD's 2040 GiB limit
    let dir = TempDir::new("huge");
    let input = dir.join("in.raw");
    sparse_raw(&input, size, &scattered(size));
    for format in [OutputFormat::Qcow2, OutputFormat::VhdDynamic] {
        let output = dir.join(&format!("out.{}", format.extension()));
        let converted = convert(&input, DiskFormat::Raw, &output, format, &mut |_, _| {}).unwrap();
        assert_eq!(info(&output, qemu_name(format))["virtual-size"], size);
        assert!(converted.size < 64 * MIB, "{converted:?}");
        assert_identical(&input, "raw", &output, qemu_name(format));
        if format == OutputFormat::Qcow2 {
            assert_check_clean(&output, "qcow2");
        }
    }
}

#[test]
fn detect_format_knows_our_outputs() {
    let dir = TempDir::new("detect");
    let input = dir.join("in.raw");
    std::fs::write(&input, noise(3, 100_000)).unwrap();
    for format in OutputFormat::ALL {
        let output = dir.join(&format!("out-{format}"));
        convert(&input, DiskFormat::Raw, &output, format, &mut |_, _| {}).unwrap();
        assert_eq!(
            imagebuilder_disk::detect_format(&output).unwrap(),
            format.disk_format()
        );
    }
}
