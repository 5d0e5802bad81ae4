//! The build VM's disk: a qcow2 overlay over the base (which is never written), grown to
//! osDiskSizeGB, and flattened into one standalone image at capture.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use imagebuilder_core::host::HostError;
use imagebuilder_core::template::model::DiskFormat;

use super::command::run;

/// The base disk as a local path (`file://` URLs and plain paths).
pub(crate) fn local_base(location: &str) -> Result<PathBuf, HostError> {
    let path = location.strip_prefix("file://").unwrap_or(location);
    if !path.starts_with('/') {
        return Err(HostError::failed(
            "open the base disk",
            format!("the QEMU host boots local images; '{location}' is not a local path"),
        ));
    }
    let path = PathBuf::from(path);
    if !path.exists() {
        return Err(HostError::failed(
            "open the base disk",
            format!("{} does not exist", path.display()),
        ));
    }
    Ok(path)
}

/// Virtual size in bytes, as qemu-img reports it.
pub(crate) async fn virtual_size(qemu_img: &str, path: &Path) -> Result<u64, HostError> {
    let args: [OsString; 4] = [
        "info".into(),
        "--output=json".into(),
        "-U".into(),
        path.into(),
    ];
    let info = run("read the disk's size", qemu_img, args).await?;
    let info: serde_json::Value = serde_json::from_str(&info).map_err(|e| {
        HostError::failed(
            "read the disk's size",
            format!("qemu-img info gave no JSON: {e}"),
        )
    })?;
    info["virtual-size"].as_u64().ok_or_else(|| {
        HostError::failed("read the disk's size", "qemu-img info gave no virtual-size")
    })
}

/// Creates the overlay and grows it to `size_gib` when given (never shrinks). Returns the
/// overlay's virtual size.
pub(crate) async fn create_overlay(
    qemu_img: &str,
    base: &Path,
    base_format: DiskFormat,
    overlay: &Path,
    size_gib: u32,
) -> Result<u64, HostError> {
    let base_size = virtual_size(qemu_img, base).await?;
    let backing = base.canonicalize().map_err(|e| HostError::Failed {
        operation: "resolve the base disk".into(),
        source: Box::new(e),
    })?;
    let args: [OsString; 9] = [
        "create".into(),
        "-q".into(),
        "-f".into(),
        "qcow2".into(),
        "-F".into(),
        base_format.qemu_name().into(),
        "-b".into(),
        backing.into(),
        overlay.into(),
    ];
    run("create the overlay disk", qemu_img, args).await?;
    if size_gib == 0 {
        return Ok(base_size);
    }
    let wanted = u64::from(size_gib) << 30;
    if wanted < base_size {
        return Err(HostError::failed(
            "size the OS disk",
            format!(
                "osDiskSizeGB {size_gib} is smaller than the source's {} GiB; disks can only grow",
                base_size.div_ceil(1 << 30)
            ),
        ));
    }
    if wanted > base_size {
        let args: [OsString; 4] = [
            "resize".into(),
            "-q".into(),
            overlay.into(),
            wanted.to_string().into(),
        ];
        run("grow the OS disk", qemu_img, args).await?;
    }
    Ok(wanted)
}

/// Flattens the overlay and its base into one standalone image at `destination`, in the
/// base's format (VHD bases are captured as qcow2; distributors convert).
pub(crate) async fn flatten(
    qemu_img: &str,
    overlay: &Path,
    format: DiskFormat,
    destination: &Path,
) -> Result<DiskFormat, HostError> {
    let output = match format {
        DiskFormat::Raw => DiskFormat::Raw,
        DiskFormat::Qcow2 | DiskFormat::Vhd => DiskFormat::Qcow2,
    };
    let args: [OsString; 8] = [
        "convert".into(),
        "-q".into(),
        "-f".into(),
        "qcow2".into(),
        "-O".into(),
        output.qemu_name().into(),
        overlay.into(),
        destination.into(),
    ];
    run("capture the disk", qemu_img, args).await?;
    Ok(output)
}
