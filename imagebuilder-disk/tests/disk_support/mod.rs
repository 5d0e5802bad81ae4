//! Helpers for the disk tests: temporary directories, qemu-img (the oracle), test disks.

#![allow(dead_code, unreachable_pub)] // each test file uses a part

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// A directory under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("imagebuilder-disk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs qemu-img; panics with its stderr unless it succeeds.
pub fn qemu_img(args: &[&str]) -> String {
    let output = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("run qemu-img (the tests' oracle; install qemu-utils)");
    assert!(
        output.status.success(),
        "qemu-img {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs qemu-img and returns whether it succeeded, with its output.
pub fn qemu_img_status(args: &[&str]) -> (bool, String) {
    let output = Command::new("qemu-img").args(args).output().unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// `qemu-img info --output=json -f format path`.
pub fn info(path: &Path, format: &str) -> serde_json::Value {
    let out = qemu_img(&[
        "info",
        "--output=json",
        "-f",
        format,
        path.to_str().unwrap(),
    ]);
    serde_json::from_str(&out).unwrap()
}

/// `qemu-img compare` says the two images hold the same disk.
pub fn assert_identical(a: &Path, a_format: &str, b: &Path, b_format: &str) {
    let out = qemu_img(&[
        "compare",
        "-f",
        a_format,
        "-F",
        b_format,
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert!(out.contains("Images are identical"), "{out}");
}

/// `qemu-img check` finds nothing wrong.
pub fn assert_check_clean(path: &Path, format: &str) {
    let (ok, out) = qemu_img_status(&["check", "-f", format, path.to_str().unwrap()]);
    assert!(ok, "qemu-img check {}: {out}", path.display());
    assert!(out.contains("No errors were found"), "{out}");
}

/// Bytes the file really occupies on disk.
pub fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// Deterministic bytes (xorshift), different for each seed.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A sparse raw file of `size` bytes with noise at `(offset, len)` places; returns the bytes
/// of data written.
pub fn sparse_raw(path: &Path, size: u64, places: &[(u64, usize)]) -> u64 {
    let file = File::create(path).unwrap();
    file.set_len(size).unwrap();
    let mut written = 0;
    for (i, &(offset, len)) in places.iter().enumerate() {
        file.write_all_at(&noise(i as u64 + 1, len), offset)
            .unwrap();
        written += len as u64;
    }
    written
}

/// Places spread over a disk of `size`: unaligned ones, MiB-sized ones, and the last MiB.
pub fn scattered(size: u64) -> Vec<(u64, usize)> {
    vec![
        (0, 4096),
        (3 * MIB + 512, 5000),
        (size / 3, MIB as usize),
        (size / 2 + 12345, 700_000),
        (size - 2 * MIB - 100, 64 << 10),
        (size - MIB, MIB as usize),
    ]
}

/// sha256 of a file, by `sha256sum`.
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}
