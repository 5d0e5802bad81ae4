//! The base disk is someone else's file. Before qemu-img or QEMU opens it, our own reader
//! (`imagebuilder-disk`'s) checks that it is the format the template declares and that it
//! reaches for nothing outside itself: no backing file, no external data file, no encryption,
//! no table past its end, no absurd size. QEMU is then always told the format, never asked
//! to guess it.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use imagebuilder_core::host::HostError;
use imagebuilder_core::template::model::DiskFormat;
use imagebuilder_disk::{detect_format, open_reader, DiskError};

/// The first bytes of a qcow2 image.
const QCOW2_MAGIC: [u8; 4] = *b"QFI\xfb";

const OPERATION: &str = "check the base disk";

/// A base disk that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedBase {
    /// The file checked, with symlinks resolved: what QEMU is to open, so a link swapped
    /// after the check does not change it.
    pub(crate) path: PathBuf,
    /// Its virtual size, as our reader (and QEMU, for the declared format) sees it.
    pub(crate) virtual_size: u64,
}

/// Checks the local base disk `path` as a `declared` image.
///
/// # Errors
/// [`HostError::Failed`] naming the file, the declared format and what is wrong with it.
pub(crate) async fn inspect_base(
    path: &Path,
    declared: DiskFormat,
) -> Result<CheckedBase, HostError> {
    let path = path.canonicalize().map_err(|e| HostError::Failed {
        operation: format!("resolve the base disk {}", path.display()),
        source: Box::new(e),
    })?;
    tokio::task::spawn_blocking(move || {
        let virtual_size = inspect_blocking(&path, declared)?;
        Ok(CheckedBase { path, virtual_size })
    })
    .await
    .map_err(|e| HostError::failed(OPERATION, format!("the check stopped: {e}")))?
}

fn inspect_blocking(path: &Path, declared: DiskFormat) -> Result<u64, HostError> {
    let refuse = |what: String| {
        HostError::failed(
            OPERATION,
            format!("{} (declared {declared}): {what}", path.display()),
        )
    };
    let io = |e: std::io::Error| HostError::Failed {
        operation: format!("read the base disk {}", path.display()),
        source: Box::new(e),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut head = [0u8; 4];
    let starts_qcow2 = match file.read_exact_at(&mut head, 0) {
        Ok(()) => head == QCOW2_MAGIC,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
        Err(e) => return Err(io(e)),
    };
    match declared {
        // QEMU would read it as raw, but a disk that starts like a qcow2 image is one saved
        // under the wrong name (or made to be taken for one): refuse rather than guess.
        DiskFormat::Raw | DiskFormat::Vhd if starts_qcow2 => {
            return Err(refuse(
                "it starts with a qcow2 header (QFI\\xfb); if it is a qcow2 image, declare \
                 format qcow2"
                    .into(),
            ));
        }
        DiskFormat::Qcow2 if !starts_qcow2 => {
            // Only to say what it looks like: the format is never chosen from the bytes.
            let found = match detect_format(path) {
                Ok(DiskFormat::Vhd) => "a VHD footer (conectix)",
                _ => "no known header (raw data?)",
            };
            return Err(refuse(format!(
                "it has no qcow2 header (QFI\\xfb); found {found}"
            )));
        }
        _ => {}
    }
    let reader = open_reader(path, declared).map_err(|e| match e {
        DiskError::Invalid { message, .. } => refuse(message),
        other => HostError::Failed {
            operation: format!("read the base disk {}", path.display()),
            source: Box::new(other),
        },
    })?;
    Ok(reader.virtual_size())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_img(args: &[&str]) {
        let status = std::process::Command::new("qemu-img")
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "qemu-img {args:?}");
    }

    #[tokio::test]
    async fn good_bases_pass_with_the_size_qemu_sees_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.img");
        std::fs::write(&raw, vec![0u8; 3 << 20]).unwrap();
        let checked = inspect_base(&raw, DiskFormat::Raw).await.unwrap();
        assert_eq!(checked.virtual_size, 3 << 20);
        for (format, name) in [(DiskFormat::Qcow2, "qcow2"), (DiskFormat::Vhd, "vpc")] {
            let path = dir.path().join(format!("disk.{name}"));
            let path_text = path.to_str().unwrap();
            qemu_img(&[
                "convert",
                "-q",
                "-f",
                "raw",
                "-O",
                name,
                raw.to_str().unwrap(),
                path_text,
            ]);
            let link = dir.path().join(format!("link-{name}"));
            std::os::unix::fs::symlink(&path, &link).unwrap();
            let checked = inspect_base(&link, format).await.unwrap();
            assert_eq!(checked.path, path.canonicalize().unwrap(), "{format}");
            let out = std::process::Command::new("qemu-img")
                .args(["info", "--output=json", "-f", name, path_text])
                .output()
                .unwrap();
            let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                Some(checked.virtual_size),
                info["virtual-size"].as_u64(),
                "{format}"
            );
        }
    }
}
