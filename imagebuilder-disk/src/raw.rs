//! Raw images: the virtual disk byte for byte.
//!
//! Reading asks the filesystem where the data is (`SEEK_DATA`/`SEEK_HOLE`), so holes become
//! zero chunks without being read. Writing writes only the 4 KiB pieces that are not all zeros,
//! so what was sparse stays sparse.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use bytes::BytesMut;

use super::file;
use super::zero::{for_each_nonzero_run, is_zero};
use super::{Chunk, ChunkData, DiskError, DiskReader, DiskWriter, OutputSink, MAX_CHUNK};

/// The granule below which the writers do not look for zeros: a filesystem block.
pub(crate) const ZERO_GRANULE: usize = 4 << 10;

/// Reads the first `size` bytes of a file as a virtual disk.
#[derive(Debug)]
pub(crate) struct RawReader {
    file: File,
    path: PathBuf,
    size: u64,
    pos: u64,
    /// End of the data region `pos` is in, when known.
    data_end: u64,
    /// False once the filesystem said it cannot tell holes from data.
    seek_holes: bool,
}

impl RawReader {
    /// A reader of the whole file.
    pub(crate) fn open(path: &Path) -> Result<Self, DiskError> {
        let file = file::open(path)?;
        let size = file::len(&file, path)?;
        Ok(Self::new(file, path, size))
    }

    /// A reader of the first `size` bytes of `file` (a fixed VHD's data before its footer).
    pub(crate) fn new(file: File, path: &Path, size: u64) -> Self {
        Self {
            file,
            path: path.to_owned(),
            size,
            pos: 0,
            data_end: 0,
            seek_holes: true,
        }
    }

    /// Where the next data at or after `offset` starts, `None` when only holes follow.
    fn seek(&self, offset: u64, whence: libc::c_int) -> Result<Option<u64>, DiskError> {
        let Ok(offset) = libc::off_t::try_from(offset) else {
            return Ok(None);
        };
        // SAFETY: lseek takes no pointers; the descriptor stays open while `self.file` lives.
        // It moves the shared file position, which nothing here uses: reads are positioned.
        let found = unsafe { libc::lseek(self.file.as_raw_fd(), offset, whence) };
        if found >= 0 {
            return Ok(Some(found as u64));
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::ENXIO) {
            Ok(None)
        } else {
            Err(DiskError::io(
                format!("look for data in {}", self.path.display()),
                error,
            ))
        }
    }

    /// Moves `data_end` past `pos` or returns the zero run that starts at `pos`.
    fn find_data(&mut self) -> Result<Option<u64>, DiskError> {
        if !self.seek_holes {
            self.data_end = self.size;
            return Ok(None);
        }
        let data = match self.seek(self.pos, libc::SEEK_DATA) {
            Ok(data) => data,
            // A filesystem or device without hole support: everything is data.
            Err(DiskError::Io { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {
                self.seek_holes = false;
                self.data_end = self.size;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let data = data.unwrap_or(self.size).min(self.size);
        if data > self.pos {
            return Ok(Some(data - self.pos));
        }
        let hole = self.seek(self.pos, libc::SEEK_HOLE)?.unwrap_or(self.size);
        self.data_end = hole.clamp(self.pos + 1, self.size);
        Ok(None)
    }
}

impl DiskReader for RawReader {
    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, DiskError> {
        if self.pos >= self.size {
            return Ok(None);
        }
        let offset = self.pos;
        if self.pos >= self.data_end {
            if let Some(zeros) = self.find_data()? {
                self.pos += zeros;
                return Ok(Some(Chunk {
                    offset,
                    data: ChunkData::Zero(zeros),
                }));
            }
        }
        let len = (self.data_end - self.pos).min(MAX_CHUNK as u64) as usize;
        let mut buf = BytesMut::zeroed(len);
        file::read_exact_at(&self.file, &self.path, &mut buf, offset)?;
        self.pos += len as u64;
        let data = if is_zero(&buf) {
            ChunkData::Zero(len as u64)
        } else {
            ChunkData::Data(buf.freeze())
        };
        Ok(Some(Chunk { offset, data }))
    }
}

/// Checks that `chunk` continues at `pos` and stays within `size`.
pub(crate) fn check_order(chunk: &Chunk, pos: u64, size: u64) -> Result<(), DiskError> {
    if chunk.offset != pos {
        return Err(DiskError::ChunkOrder {
            message: format!("expected a chunk at {pos}, got one at {}", chunk.offset),
        });
    }
    if chunk
        .offset
        .checked_add(chunk.len())
        .is_none_or(|end| end > size)
    {
        return Err(DiskError::ChunkOrder {
            message: format!(
                "a chunk of {} bytes at {} passes the virtual size {size}",
                chunk.len(),
                chunk.offset
            ),
        });
    }
    Ok(())
}

/// Writes the virtual disk as is, skipping zeros; the body of a fixed VHD too.
pub(crate) struct RawWriter {
    sink: Box<dyn OutputSink>,
    size: u64,
    pos: u64,
}

impl RawWriter {
    pub(crate) fn new(size: u64, sink: Box<dyn OutputSink>) -> Self {
        Self { sink, size, pos: 0 }
    }

    /// The sink, once every byte of the virtual disk has come.
    pub(crate) fn into_sink(self) -> Result<Box<dyn OutputSink>, DiskError> {
        if self.pos != self.size {
            return Err(DiskError::ChunkOrder {
                message: format!(
                    "finished after {} bytes of a {}-byte disk",
                    self.pos, self.size
                ),
            });
        }
        Ok(self.sink)
    }
}

impl DiskWriter for RawWriter {
    fn sequential(&self) -> bool {
        true
    }

    fn write_chunk(&mut self, chunk: &Chunk) -> Result<(), DiskError> {
        check_order(chunk, self.pos, self.size)?;
        if let ChunkData::Data(bytes) = &chunk.data {
            let sink = &mut self.sink;
            for_each_nonzero_run(bytes, ZERO_GRANULE, |start, run| {
                let at = chunk.offset + start as u64;
                sink.write_at(at, run)
                    .map_err(|e| DiskError::io(format!("write {} bytes at {at}", run.len()), e))
            })?;
        }
        self.pos = chunk.end();
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<u64, DiskError> {
        let size = self.size;
        self.into_sink()?
            .finish(size)
            .map_err(|e| DiskError::io("finish the raw image", e))?;
        Ok(size)
    }
}
