//! The base disk as the VM hosts read it: a local file, checked by [`super::inspect`] before
//! anything else opens it.

use std::path::PathBuf;

use imagebuilder_core::host::HostError;
use imagebuilder_core::template::model::DiskFormat;

/// The base disk as a local path (`file://` URLs and plain paths).
pub(crate) fn local_base(location: &str, host: &str) -> Result<PathBuf, HostError> {
    let path = location.strip_prefix("file://").unwrap_or(location);
    if !path.starts_with('/') {
        return Err(HostError::failed(
            "open the base disk",
            format!("the {host} host boots local images; '{location}' is not a local path"),
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

/// The size the OS disk gets: the base's, or `size_gib` when given; never smaller.
pub(crate) fn os_disk_size(base_size: u64, size_gib: u32) -> Result<u64, HostError> {
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
    Ok(wanted)
}

/// The format a capture of a `base`-format disk is written in: raw stays raw, qcow2 and VHD
/// bases are captured as qcow2 (distributors convert).
pub(crate) fn capture_format(base: DiskFormat) -> DiskFormat {
    match base {
        DiskFormat::Raw => DiskFormat::Raw,
        DiskFormat::Qcow2 | DiskFormat::Vhd => DiskFormat::Qcow2,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn os_disks_only_grow() {
        assert_eq!(super::os_disk_size(5 << 30, 0).unwrap(), 5 << 30);
        assert_eq!(super::os_disk_size(5 << 30, 8).unwrap(), 8 << 30);
        let err = super::os_disk_size(5 << 30, 4).unwrap_err();
        assert!(imagebuilder_core::error_chain(&err).contains("can only grow"));
    }
}
