//! Images we must not read are refused with an error naming the file, never a panic: what qemu
//! makes with features we do not read, hand-broken headers, and randomly damaged images.

mod disk_support;

use std::os::unix::fs::FileExt;
use std::path::Path;

use disk_support::*;
use imagebuilder_core::template::model::DiskFormat;
use imagebuilder_disk::{convert, open_reader, DiskError, OutputFormat};

/// Opening (and, if that works, reading all of) `path` fails with `Invalid` naming it and
/// saying `words`.
fn assert_refused(path: &Path, format: DiskFormat, words: &str) {
    let result = open_reader(path, format).and_then(|mut reader| {
        while reader.next_chunk()?.is_some() {}
        Ok(())
    });
    match result {
        Err(DiskError::Invalid {
            path: named,
            message,
        }) => {
            assert_eq!(named, path.display().to_string());
            assert!(message.contains(words), "{message:?} should say {words:?}");
        }
        other => panic!(
            "{}: expected a refusal saying {words:?}, got {other:?}",
            path.display()
        ),
    }
}

fn qcow2(dir: &TempDir, name: &str, options: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    for option in options {
        args.extend(["-o", option]);
    }
    args.extend([path.to_str().unwrap(), "4M"]);
    qemu_img(&args);
    path
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

#[test]
fn a_backing_file_is_refused_by_name() {
    let dir = TempDir::new("refuse-backing");
    let base = dir.join("base.raw");
    std::fs::write(&base, vec![0u8; 4 << 20]).unwrap();
    let image = dir.join("overlay.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        base.to_str().unwrap(),
        "-F",
        "raw",
        image.to_str().unwrap(),
    ]);
    assert_refused(
        &image,
        DiskFormat::Qcow2,
        &format!("backing file ({})", base.display()),
    );
}

#[test]
fn an_external_data_file_is_refused() {
    let dir = TempDir::new("refuse-data-file");
    let data = dir.join("data.raw");
    let image = qcow2(&dir, "x.qcow2", &[&format!("data_file={}", data.display())]);
    assert_refused(&image, DiskFormat::Qcow2, "external data file");
}

#[test]
fn the_external_data_file_bit_alone_is_refused() {
    let dir = TempDir::new("refuse-data-bit");
    let image = qcow2(&dir, "x.qcow2", &[]);
    patch(&image, 72, &4u64.to_be_bytes());
    assert_refused(&image, DiskFormat::Qcow2, "external data file");
}

#[test]
fn extended_l2_entries_are_refused() {
    let dir = TempDir::new("refuse-extended-l2");
    let image = qcow2(&dir, "x.qcow2", &["extended_l2=on"]);
    assert_refused(&image, DiskFormat::Qcow2, "extended L2");
}

#[test]
fn zstd_compression_is_refused() {
    let dir = TempDir::new("refuse-zstd");
    let image = qcow2(&dir, "x.qcow2", &["compression_type=zstd"]);
    assert_refused(&image, DiskFormat::Qcow2, "zstd");
}

#[test]
fn encryption_is_refused() {
    let dir = TempDir::new("refuse-luks");
    let image = dir.join("x.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "--object",
        "secret,id=sec0,data=not-a-secret",
        "-f",
        "qcow2",
        "-o",
        "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
        image.to_str().unwrap(),
        "4M",
    ]);
    assert_refused(&image, DiskFormat::Qcow2, "encrypted");
}

#[test]
fn an_l1_table_past_the_end_is_refused() {
    let dir = TempDir::new("refuse-l1");
    let image = qcow2(&dir, "x.qcow2", &[]);
    patch(&image, 40, &(1u64 << 40).to_be_bytes());
    assert_refused(&image, DiskFormat::Qcow2, "past the end");
}

#[test]
fn an_l2_table_past_the_end_is_refused_while_reading() {
    let dir = TempDir::new("refuse-l2");
    let image = qcow2(&dir, "x.qcow2", &[]);
    let info = info(&image, "qcow2");
    assert_eq!(info["cluster-size"], 65536);
    // The L1 table of a fresh image is at 0x30000; point its first entry far away.
    patch(&image, 0x30000, &((1u64 << 40) | (1 << 63)).to_be_bytes());
    assert_refused(&image, DiskFormat::Qcow2, "past the end");
}

#[test]
fn an_absurd_virtual_size_is_refused() {
    let dir = TempDir::new("refuse-size");
    let image = qcow2(&dir, "x.qcow2", &[]);
    patch(&image, 24, &(1u64 << 50).to_be_bytes());
    assert_refused(&image, DiskFormat::Qcow2, "over our limit");
}

#[test]
fn a_raw_file_named_as_qcow2_is_refused() {
    let dir = TempDir::new("refuse-not-qcow2");
    let path = dir.join("x.raw");
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    assert_refused(&path, DiskFormat::Qcow2, "not a qcow2");
    assert_refused(&path, DiskFormat::Vhd, "conectix");
}

#[test]
fn a_vhd_with_a_bad_checksum_is_refused() {
    let dir = TempDir::new("refuse-vhd");
    let image = dir.join("x.vhd");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "vpc",
        "-o",
        "subformat=fixed",
        image.to_str().unwrap(),
        "4M",
    ]);
    let len = std::fs::metadata(&image).unwrap().len();
    patch(&image, len - 512 + 48, &[1]);
    assert_refused(&image, DiskFormat::Vhd, "checksum");
}

#[test]
fn a_dynamic_vhd_block_past_the_end_is_refused() {
    let dir = TempDir::new("refuse-vhd-bat");
    let image = dir.join("x.vhd");
    qemu_img(&["create", "-q", "-f", "vpc", image.to_str().unwrap(), "4M"]);
    // The BAT follows the footer copy and the dynamic header.
    patch(&image, 1536, &0x0100_0000u32.to_be_bytes());
    assert_refused(&image, DiskFormat::Vhd, "outside the file");
}

#[test]
fn a_failed_conversion_leaves_nothing_and_keeps_what_was_there() {
    let dir = TempDir::new("refuse-convert");
    let image = qcow2(&dir, "x.qcow2", &[]);
    // Valid header, broken L2 pointer: the failure comes mid-stream, after the output exists.
    patch(&image, 0x30000, &((1u64 << 40) | (1 << 63)).to_be_bytes());
    let output = dir.join("out.vhd");
    std::fs::write(&output, b"published earlier").unwrap();
    for format in OutputFormat::ALL {
        let err = convert(&image, DiskFormat::Qcow2, &output, format, &mut |_, _| {});
        assert!(
            matches!(err, Err(DiskError::Invalid { .. })),
            "{format}: {err:?}"
        );
        assert_eq!(std::fs::read(&output).unwrap(), b"published earlier");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}

/// Reads at most `limit` chunks: a damaged size may describe a huge, empty disk.
fn read_some(path: &Path, format: DiskFormat, limit: usize) -> Result<(), DiskError> {
    let mut reader = open_reader(path, format)?;
    for _ in 0..limit {
        if reader.next_chunk()?.is_none() {
            break;
        }
    }
    Ok(())
}

#[test]
fn damaged_images_never_panic() {
    let dir = TempDir::new("refuse-fuzz");
    let source = dir.join("source.raw");
    sparse_raw(&source, 4 * MIB, &[(0, 100_000), (3 * MIB, 5000)]);
    let mut images = Vec::new();
    for (name, fmt, options) in [
        ("c.qcow2", "qcow2", vec!["-c", "-o", "cluster_size=4096"]),
        (
            "v2.qcow2",
            "qcow2",
            vec!["-o", "compat=0.10,cluster_size=512"],
        ),
        ("d.vhd", "vpc", vec![]),
    ] {
        let image = dir.join(name);
        let mut args = vec!["convert", "-q", "-f", "raw", "-O", fmt];
        args.extend(options);
        args.extend([source.to_str().unwrap(), image.to_str().unwrap()]);
        qemu_img(&args);
        let format = if fmt == "vpc" {
            DiskFormat::Vhd
        } else {
            DiskFormat::Qcow2
        };
        images.push((image, format, std::fs::read(dir.join(name)).unwrap()));
    }
    let damaged = dir.join("damaged");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (image, format, bytes) in &images {
        // The metadata: the header clusters and tables (qcow2), the footer, header and BAT
        // (VHD), and for VHD the last sector too.
        let hot = bytes.len().min(16 << 10);
        for round in 0..150 {
            let mut copy = bytes.clone();
            for _ in 0..1 + round % 4 {
                let at = if *format == DiskFormat::Vhd && next() % 2 == 0 {
                    copy.len() - 1 - (next() % 512) as usize
                } else {
                    (next() % hot as u64) as usize
                };
                copy[at] = next() as u8;
            }
            if round % 10 == 0 {
                copy.truncate((next() % copy.len() as u64) as usize);
            }
            std::fs::write(&damaged, &copy).unwrap();
            // Any result but a panic is fine.
            let _ = read_some(&damaged, *format, 2000);
        }
        // The undamaged image still reads.
        read_some(image, *format, usize::MAX).unwrap();
    }
}
