//! Disk image formats: reading raw, qcow2 and VHD, writing raw, qcow2, fixed and dynamic VHD.
//!
//! Everything streams. A [`DiskReader`] yields the virtual disk in order as [`Chunk`]s, each
//! either data or a run of zeros; a [`DiskWriter`] lays them out in its format on an
//! [`OutputSink`]. Zero runs are never materialized, so a large disk with little data costs
//! little time, and memory stays bounded whatever the disk's size.
//!
//! | piece | what |
//! |---|---|
//! | [`open_reader`] | a [`DiskReader`] for a raw, qcow2 (v2, v3, deflate-compressed) or VHD (fixed, dynamic) file; the caller names the format |
//! | [`writer`] | a [`DiskWriter`] for an [`OutputFormat`]: raw, qcow2 v3, fixed VHD (Azure's rules), dynamic VHD |
//! | [`FileSink`], [`HashingSink`] | where writers put bytes: a local file; a wrapper that computes the output's sha256 |
//! | [`convert`], [`sha256_file`] | file to file, atomically; a file's sha256 (holes hashed without being read) |
//!
//! Readers never trust the file: every size and offset is checked against the file and against
//! fixed bounds before it is used, and anything we do not read (backing files, encryption,
//! external data files, zstd) is refused with [`DiskError::Invalid`] naming the file.
//!
//! ```no_run
//! use imagebuilder_core::template::model::DiskFormat;
//! use imagebuilder_disk::{convert, sha256_file, OutputFormat};
//!
//! let converted = convert(
//!     "disk.qcow2".as_ref(),
//!     DiskFormat::Qcow2,
//!     "disk.vhd".as_ref(),
//!     OutputFormat::VhdFixed,
//!     &mut |done, total| eprintln!("{done}/{total}"),
//! )?;
//! println!("{} bytes, sha256 {}", converted.size, sha256_file("disk.vhd".as_ref())?);
//! # Ok::<(), imagebuilder_disk::DiskError>(())
//! ```

use bytes::Bytes;

mod blocks;
mod convert;
mod file;
mod format;
mod qcow2;
mod raw;
mod sink;
mod vhd;
mod zero;

pub use convert::{convert, sha256_file, Converted};
pub use format::{detect_format, open_reader, writer, FormatLayout, OutputFormat};
pub use sink::{FileSink, HashingSink, Sha256Handle};

/// The largest virtual size a reader accepts (64 TiB): a larger one is taken as a corrupt or
/// hostile header.
pub const MAX_VIRTUAL_SIZE: u64 = 64 << 40;

/// The largest data chunk a reader yields; memory use is a small multiple of it.
pub const MAX_CHUNK: usize = 2 << 20;

/// A stretch of the virtual disk, starting at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Byte offset in the virtual disk.
    pub offset: u64,
    /// What is there.
    pub data: ChunkData,
}

/// The contents of a [`Chunk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkData {
    /// These bytes (at most [`MAX_CHUNK`]; they may still be all zeros).
    Data(Bytes),
    /// This many zero bytes.
    Zero(u64),
}

impl Chunk {
    /// Length of the chunk in bytes.
    pub fn len(&self) -> u64 {
        match &self.data {
            ChunkData::Data(bytes) => bytes.len() as u64,
            ChunkData::Zero(len) => *len,
        }
    }

    /// Whether the chunk is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offset just past the chunk.
    pub fn end(&self) -> u64 {
        self.offset + self.len()
    }
}

/// Reads a disk image as its virtual disk.
///
/// # Contract
/// Successive [`next_chunk`](DiskReader::next_chunk) calls return chunks that cover
/// `0..virtual_size()` in order, without gaps or overlaps, then `None`.
pub trait DiskReader: Send {
    /// Size of the virtual disk in bytes.
    fn virtual_size(&self) -> u64;

    /// The next chunk, or `None` at the end of the disk.
    ///
    /// # Errors
    /// [`DiskError`] when the file cannot be read or is not a valid image.
    fn next_chunk(&mut self) -> Result<Option<Chunk>, DiskError>;
}

/// Where a [`DiskWriter`] puts its bytes: a local file, a page blob, an upload.
///
/// # Contract
/// Bytes never written read as zeros. A sink may require writes in increasing offset order
/// (an upload does); [`DiskWriter::sequential`] says whether a writer keeps to that.
pub trait OutputSink: Send {
    /// Writes `data` at `offset` of the output.
    ///
    /// # Errors
    /// Whatever the underlying store reports.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()>;

    /// Completes the output with length `len` bytes.
    ///
    /// # Errors
    /// Whatever the underlying store reports.
    fn finish(self: Box<Self>, len: u64) -> std::io::Result<()>;
}

/// Writes a virtual disk in one format.
///
/// # Contract
/// Takes the chunks of one [`DiskReader`] in order, then `finish`.
pub trait DiskWriter: Send {
    /// Whether this writer calls [`OutputSink::write_at`] only with increasing offsets.
    fn sequential(&self) -> bool;

    /// Writes the next chunk of the virtual disk.
    ///
    /// # Errors
    /// [`DiskError`] when the sink fails.
    fn write_chunk(&mut self, chunk: &Chunk) -> Result<(), DiskError>;

    /// Writes what remains (tables, footer) and finishes the sink; returns the output's size.
    ///
    /// # Errors
    /// [`DiskError`] when the sink fails.
    fn finish(self: Box<Self>) -> Result<u64, DiskError>;
}

/// A disk image could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// Reading or writing failed.
    #[error("{what}")]
    Io {
        /// What was being done, naming the file.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The input is not a valid image of its format, or uses a feature we do not read.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The virtual disk is larger than the output format can hold.
    #[error("a {format} image holds at most {max} bytes, not {virtual_size}")]
    TooLarge {
        /// The output format.
        format: OutputFormat,
        /// The disk's virtual size.
        virtual_size: u64,
        /// The format's limit.
        max: u64,
    },
    /// A writer was not given one reader's chunks in order: a bug in the caller.
    #[error("chunks out of order: {message}")]
    ChunkOrder {
        /// What was expected and what came.
        message: String,
    },
}

impl DiskError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn invalid(path: &std::path::Path, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

impl OutputSink for Box<dyn OutputSink> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        (**self).write_at(offset, data)
    }

    fn finish(self: Box<Self>, len: u64) -> std::io::Result<()> {
        (*self).finish(len)
    }
}
