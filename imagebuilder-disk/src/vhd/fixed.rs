//! Writing a fixed VHD the way Azure requires it.

use super::super::raw::RawWriter;
use super::super::{Chunk, DiskError, DiskWriter, OutputSink};
use super::footer::{Footer, FIXED, FOOTER_LEN};

const MIB: u64 = 1 << 20;

/// Writes the disk as it is, padded to a whole MiB, then the footer: Azure accepts only fixed
/// VHDs whose virtual size is a whole number of MiB, so the file is N MiB + 512 bytes.
pub(crate) struct FixedVhdWriter {
    body: RawWriter,
    size: u64,
}

impl FixedVhdWriter {
    /// The virtual size a fixed VHD of a `virtual_size`-byte disk has.
    pub(crate) fn size_for(virtual_size: u64) -> u64 {
        virtual_size.div_ceil(MIB) * MIB
    }

    pub(crate) fn new(virtual_size: u64, sink: Box<dyn OutputSink>) -> Self {
        Self {
            body: RawWriter::new(virtual_size, sink),
            size: Self::size_for(virtual_size),
        }
    }
}

impl DiskWriter for FixedVhdWriter {
    fn sequential(&self) -> bool {
        true
    }

    fn write_chunk(&mut self, chunk: &Chunk) -> Result<(), DiskError> {
        self.body.write_chunk(chunk)
    }

    fn finish(self: Box<Self>) -> Result<u64, DiskError> {
        let mut sink = self.body.into_sink()?;
        // The padding up to the MiB is never written: it reads as zeros.
        let footer = Footer::ours(FIXED, self.size, u64::MAX).to_bytes();
        sink.write_at(self.size, &footer)
            .map_err(|e| DiskError::io("write the VHD footer", e))?;
        let len = self.size + FOOTER_LEN as u64;
        sink.finish(len)
            .map_err(|e| DiskError::io("finish the VHD", e))?;
        Ok(len)
    }
}
