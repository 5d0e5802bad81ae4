//! The build VM's disk: a qcow2 overlay over the base (which is never written), grown to
//! osDiskSizeGB, and flattened into one standalone image at capture.

use std::ffi::OsString;
use std::path::Path;

use imagebuilder_core::host::HostError;
use imagebuilder_core::template::model::DiskFormat;

use crate::vmkit::command::run;
use crate::vmkit::disk::{capture_format, os_disk_size};
use crate::vmkit::inspect::CheckedBase;

/// Creates the overlay over the checked `base` (its format named, never probed) and grows
/// it to `size_gib` when given (never shrinks). Returns the overlay's virtual size.
pub(crate) async fn create_overlay(
    qemu_img: &str,
    base: &CheckedBase,
    base_format: DiskFormat,
    overlay: &Path,
    size_gib: u32,
) -> Result<u64, HostError> {
    let base_size = base.virtual_size;
    let backing = base.path.clone();
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
    let wanted = os_disk_size(base_size, size_gib)?;
    if wanted > base_size {
        let args: [OsString; 6] = [
            "resize".into(),
            "-q".into(),
            "-f".into(),
            "qcow2".into(),
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
    let output = capture_format(format);
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
