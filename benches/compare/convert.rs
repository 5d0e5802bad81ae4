//! Conversion of a capture to a fixed VHD: `imagebuilder convert` vs `qemu-img convert` vs the
//! floor, `cp --sparse=always` of the same data as raw.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::measure::{run_quiet, settle};
use crate::Setup;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// One input image and the raw file holding the same data (what the floor copies).
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) input: PathBuf,
    /// `qcow2` or `raw`, as both tools name it.
    pub(crate) format: &'static str,
    pub(crate) raw: PathBuf,
}

/// The contenders of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Ours,
    QemuImg,
    Floor,
    /// `IB_BENCH_BEFORE`'s `imagebuilder convert`.
    Before,
}

impl Tool {
    pub(crate) fn all(before: bool) -> Vec<Self> {
        let mut all = vec![Self::Ours, Self::QemuImg, Self::Floor];
        if before {
            all.push(Self::Before);
        }
        all
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ours => "imagebuilder convert",
            Self::QemuImg => "qemu-img convert -O vpc",
            Self::Floor => "cp --sparse=always (floor)",
            Self::Before => "imagebuilder convert, before",
        }
    }
}

/// Writes the inputs once (kept between runs of the harness: they take a minute).
pub(crate) fn cases(setup: &Setup) -> Result<Vec<Case>, String> {
    let dir = setup.data.join("convert");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let sparse_raw = dir.join("sparse-8g.raw");
    let sparse_qcow2 = dir.join("sparse-8g.qcow2");
    let dense_raw = dir.join("dense-2g.raw");
    if !sparse_qcow2.exists() {
        eprintln!("convert: writing an 8 GiB disk with 1 GiB of data");
        // 128 extents of 8 MiB, one every 64 MiB: data spread over the disk as a file system
        // spreads it.
        write_extents(&sparse_raw, 8 * GIB, 64 * MIB, 8 * MIB)?;
        let tmp = dir.join("sparse-8g.qcow2.tmp");
        run_quiet(
            Command::new("qemu-img")
                .args(["convert", "-f", "raw", "-O", "qcow2"])
                .arg(&sparse_raw)
                .arg(&tmp),
        )
        .map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &sparse_qcow2).map_err(|e| e.to_string())?;
    }
    if !dense_raw.exists() {
        eprintln!("convert: writing a dense 2 GiB disk");
        let tmp = dir.join("dense-2g.raw.tmp");
        write_extents(&tmp, 2 * GIB, 2 * GIB, 2 * GIB)?;
        std::fs::rename(&tmp, &dense_raw).map_err(|e| e.to_string())?;
    }
    settle();
    Ok(vec![
        Case {
            name: "8 GiB qcow2, 1 GiB data",
            input: sparse_qcow2,
            format: "qcow2",
            raw: sparse_raw,
        },
        Case {
            name: "2 GiB raw, dense",
            input: dense_raw.clone(),
            format: "raw",
            raw: dense_raw,
        },
    ])
}

/// A `size`-byte sparse file with `extent` bytes of noise at the start of every `every` bytes.
fn write_extents(path: &Path, size: u64, every: u64, extent: u64) -> Result<(), String> {
    let mut file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    file.set_len(size).map_err(|e| e.to_string())?;
    let mut at = 0;
    let mut seed = 1;
    while at < size {
        file.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
        let mut left = extent.min(size - at);
        while left > 0 {
            let n = left.min(8 * MIB);
            file.write_all(&crate::noise(n as usize, seed))
                .map_err(|e| e.to_string())?;
            seed += 1;
            left -= n;
        }
        at += every;
    }
    file.sync_all().map_err(|e| e.to_string())
}

/// One conversion's figures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figures {
    pub(crate) wall: f64,
    /// `sync FILE` of the output right after: what durability costs on top of `wall`.
    pub(crate) fsync: f64,
    pub(crate) rss_mib: f64,
}

pub(crate) fn run(setup: &Setup, case: &Case, tool: Tool) -> Result<Figures, String> {
    let out_dir = setup.data.join("convert").join("out");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let output = out_dir.join(match tool {
        Tool::Floor => "copy.raw",
        _ => "output.vhd",
    });
    let _ = std::fs::remove_file(&output);
    settle();
    let mut cmd = match tool {
        Tool::Ours | Tool::Before => {
            let bin = match (tool, &setup.before) {
                (Tool::Before, Some(before)) => before,
                _ => &setup.imagebuilder,
            };
            let mut c = Command::new(bin);
            c.arg("convert").arg(&case.input).arg(&output).args([
                "--format",
                "vhd",
                "--input-format",
                case.format,
            ]);
            c
        }
        Tool::QemuImg => {
            let mut c = Command::new("qemu-img");
            c.args([
                "convert",
                "-f",
                case.format,
                "-O",
                "vpc",
                "-o",
                "subformat=fixed,force_size",
            ])
            .arg(&case.input)
            .arg(&output);
            c
        }
        Tool::Floor => {
            let mut c = Command::new("cp");
            c.arg("--sparse=always").arg(&case.raw).arg(&output);
            c
        }
    };
    let outcome = run_quiet(&mut cmd).map_err(|e| e.to_string())?;
    let fsync = run_quiet(Command::new("sync").arg(&output)).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&output);
    settle();
    Ok(Figures {
        wall: outcome.wall.as_secs_f64(),
        fsync: fsync.wall.as_secs_f64(),
        rss_mib: outcome.max_rss_kib as f64 / 1024.0,
    })
}
