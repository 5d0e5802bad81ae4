//! Positioned reads from an input file, with errors that name it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::DiskError;

/// Opens an input image for reading.
pub(crate) fn open(path: &Path) -> Result<File, DiskError> {
    File::open(path).map_err(|e| DiskError::io(format!("open {}", path.display()), e))
}

/// The length of an open file (or block device), found by seeking to its end.
pub(crate) fn len(file: &File, path: &Path) -> Result<u64, DiskError> {
    use std::io::Seek;
    let mut file = file;
    file.seek(std::io::SeekFrom::End(0))
        .map_err(|e| DiskError::io(format!("find the size of {}", path.display()), e))
}

/// Fills `buf` from `offset`; a file too short for it is an invalid image.
pub(crate) fn read_exact_at(
    file: &File,
    path: &Path,
    buf: &mut [u8],
    offset: u64,
) -> Result<(), DiskError> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            DiskError::invalid(
                path,
                format!("{} bytes at offset {offset} are past the end", buf.len()),
            )
        } else {
            DiskError::io(format!("read {}", path.display()), e)
        }
    })
}

/// Fills `buf` from `offset`, with zeros for whatever lies past the end of the file (as qemu
/// reads a cluster that the file's end cuts short).
pub(crate) fn read_padded_at(
    file: &File,
    path: &Path,
    buf: &mut [u8],
    offset: u64,
) -> Result<(), DiskError> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DiskError::io(format!("read {}", path.display()), e)),
        }
    }
    buf[done..].fill(0);
    Ok(())
}

/// Big-endian integers at fixed offsets of a header; callers check the buffer's length first.
pub(crate) fn be_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

/// See [`be_u16`].
pub(crate) fn be_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// See [`be_u16`].
pub(crate) fn be_u64(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_be_bytes(bytes)
}
