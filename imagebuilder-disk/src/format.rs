//! Choosing a reader for an input format and a writer for an output format.

use std::path::Path;

use imagebuilder_core::template::model::DiskFormat;

use super::qcow2::{Qcow2Reader, Qcow2Writer};
use super::raw::{RawReader, RawWriter};
use super::vhd::{self, DynamicVhdWriter, FixedVhdWriter};
use super::{file, DiskError, DiskReader, DiskWriter, OutputSink};

/// Opens `path` as a disk image of `format`.
///
/// The format is the caller's word: an untrusted file is never probed, since a raw disk can
/// hold any bytes, a qcow2 header among them.
///
/// # Errors
/// [`DiskError::Io`] when the file cannot be read; [`DiskError::Invalid`] when it is not a
/// valid image of `format` or uses what we do not read (for qcow2: backing files, external
/// data files, encryption, extended L2 entries, zstd compression).
pub fn open_reader(path: &Path, format: DiskFormat) -> Result<Box<dyn DiskReader>, DiskError> {
    match format {
        DiskFormat::Raw => Ok(Box::new(RawReader::open(path)?)),
        DiskFormat::Qcow2 => Ok(Box::new(Qcow2Reader::open(path)?)),
        DiskFormat::Vhd => vhd::open(path),
    }
}

/// Guesses the format of a **trusted** file (one we wrote, or the build's own capture) from
/// its first and last bytes: the qcow2 magic, else a VHD footer cookie, else raw.
///
/// Never use it on an image from elsewhere: a guest can write a qcow2 header into a raw disk,
/// and reading that disk as qcow2 would then read host files it names. Name the format.
///
/// # Errors
/// [`DiskError::Io`] when the file cannot be read.
pub fn detect_format(path: &Path) -> Result<DiskFormat, DiskError> {
    let f = file::open(path)?;
    let len = file::len(&f, path)?;
    let mut head = [0u8; 4];
    if len >= 4 {
        file::read_exact_at(&f, path, &mut head, 0)?;
        if u32::from_be_bytes(head) == super::qcow2::MAGIC {
            return Ok(DiskFormat::Qcow2);
        }
    }
    let mut cookie = [0u8; 8];
    if len >= 512 {
        file::read_exact_at(&f, path, &mut cookie, len - 512)?;
        if &cookie == b"conectix" {
            return Ok(DiskFormat::Vhd);
        }
    }
    Ok(DiskFormat::Raw)
}

pub use imagebuilder_core::template::model::OutputFormat;

/// What a writer needs to know about an [`OutputFormat`] beyond its name.
pub trait FormatLayout: Copy {
    /// Whether this format's writer writes in increasing offset order
    /// ([`DiskWriter::sequential`]), so it can stream to an upload or a [`HashingSink`].
    ///
    /// [`HashingSink`]: super::HashingSink
    fn sequential(self) -> bool;

    /// The virtual size of this format's image of a `virtual_size`-byte disk: raw keeps it,
    /// fixed VHD rounds it up to a whole MiB (Azure's rule), qcow2 and dynamic VHD to a whole
    /// 512-byte sector (the unit qemu counts in; the VHD's `current_size` is then exact).
    fn virtual_size(self, virtual_size: u64) -> u64;

    /// The largest disk this format holds here.
    fn max_virtual_size(self) -> u64;
}

impl FormatLayout for OutputFormat {
    fn sequential(self) -> bool {
        matches!(self, Self::Raw | Self::VhdFixed)
    }

    fn virtual_size(self, virtual_size: u64) -> u64 {
        match self {
            Self::Raw => virtual_size,
            Self::Qcow2 => Qcow2Writer::size_for(virtual_size),
            Self::VhdFixed => FixedVhdWriter::size_for(virtual_size),
            Self::VhdDynamic => DynamicVhdWriter::size_for(virtual_size),
        }
    }

    fn max_virtual_size(self) -> u64 {
        match self {
            Self::VhdDynamic => vhd::MAX_DYNAMIC_SIZE,
            // Our limit for reading, so that whatever we write we can read back.
            Self::Raw | Self::Qcow2 | Self::VhdFixed => super::MAX_VIRTUAL_SIZE,
        }
    }
}

/// A writer of `format` for a disk of `virtual_size` bytes onto `sink`.
///
/// # Errors
/// [`DiskError::TooLarge`] when the format cannot hold the disk.
pub fn writer(
    format: OutputFormat,
    virtual_size: u64,
    sink: Box<dyn OutputSink>,
) -> Result<Box<dyn DiskWriter>, DiskError> {
    let max = format.max_virtual_size();
    if format.virtual_size(virtual_size) > max {
        return Err(DiskError::TooLarge {
            format,
            virtual_size,
            max,
        });
    }
    Ok(match format {
        OutputFormat::Raw => Box::new(RawWriter::new(virtual_size, sink)),
        OutputFormat::Qcow2 => Box::new(Qcow2Writer::new(virtual_size, sink)),
        OutputFormat::VhdFixed => Box::new(FixedVhdWriter::new(virtual_size, sink)),
        OutputFormat::VhdDynamic => Box::new(DynamicVhdWriter::new(virtual_size, sink)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_as_each_format_needs() {
        let size = (8 << 30) + 4096 + 1;
        assert_eq!(OutputFormat::Raw.virtual_size(size), size);
        assert_eq!(OutputFormat::Qcow2.virtual_size(size), (8 << 30) + 4608);
        assert_eq!(
            OutputFormat::VhdDynamic.virtual_size(size),
            (8 << 30) + 4608
        );
        assert_eq!(
            OutputFormat::VhdFixed.virtual_size(size),
            (8 << 30) + (1 << 20)
        );
    }

    struct Nowhere;
    impl OutputSink for Nowhere {
        fn write_at(&mut self, _: u64, _: &[u8]) -> std::io::Result<()> {
            Ok(())
        }
        fn finish(self: Box<Self>, _: u64) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writers_say_what_the_format_says_about_order_and_refuse_what_they_cannot_hold() {
        for format in OutputFormat::ALL {
            let w = writer(format, 1 << 20, Box::new(Nowhere)).unwrap();
            assert_eq!(w.sequential(), format.sequential(), "{format}");
        }
        let err = writer(OutputFormat::VhdDynamic, 3 << 40, Box::new(Nowhere));
        assert!(matches!(err, Err(DiskError::TooLarge { .. })));
    }
}
