//! Writing a dynamic VHD: only blocks with data are allocated.

use super::super::blocks::Blocks;
use super::super::{Chunk, DiskError, DiskWriter, OutputSink};
use super::footer::{Footer, DYNAMIC, FOOTER_LEN};
use super::header::{DynamicHeader, HEADER_LEN};

/// Data bytes per block: 2 MiB, what Hyper-V and qemu use.
const BLOCK: u32 = 2 << 20;
/// One bit per sector of the block, padded to a sector: 512 bytes.
const BITMAP: u64 = (BLOCK as u64 / 512 / 8).div_ceil(512) * 512;
const TABLE_OFFSET: u64 = (FOOTER_LEN + HEADER_LEN) as u64;
/// The largest dynamic VHD qemu and Hyper-V accept: 0xff000000 sectors (2040 GiB).
pub(crate) const MAX_SIZE: u64 = 0xff00_0000 * 512;

/// Layout: footer copy, dynamic header, BAT, then each allocated block (an all-ones sector
/// bitmap and the data) in disk order, then the footer. Blocks go out as they come; the BAT
/// (4 bytes a block, 4 MiB at the largest) and the leading copies are written at the end.
pub(crate) struct DynamicVhdWriter {
    sink: Box<dyn OutputSink>,
    blocks: Blocks,
    size: u64,
    bat: Vec<u32>,
    /// Where the next block goes.
    next: u64,
}

impl DynamicVhdWriter {
    /// The virtual size a dynamic VHD of a `virtual_size`-byte disk has: whole sectors, as
    /// `qemu-img convert -O vpc -o force_size` makes it.
    pub(crate) fn size_for(virtual_size: u64) -> u64 {
        virtual_size.div_ceil(512) * 512
    }

    pub(crate) fn new(virtual_size: u64, sink: Box<dyn OutputSink>) -> Self {
        let size = Self::size_for(virtual_size);
        let entries = size.div_ceil(u64::from(BLOCK)) as usize;
        let bat_len = (entries as u64 * 4).div_ceil(512) * 512;
        Self {
            sink,
            blocks: Blocks::new(BLOCK as usize, virtual_size),
            size,
            bat: vec![u32::MAX; entries],
            next: TABLE_OFFSET + bat_len,
        }
    }

    fn emit(&mut self, chunk: Option<&Chunk>) -> Result<(), DiskError> {
        let Self {
            sink,
            blocks,
            bat,
            next,
            ..
        } = self;
        let mut emit = |index: u64, data: &[u8]| -> Result<(), DiskError> {
            let at = *next;
            let bitmap = [0xffu8; BITMAP as usize];
            sink.write_at(at, &bitmap)
                .and_then(|()| sink.write_at(at + BITMAP, data))
                .map_err(|e| DiskError::io(format!("write VHD block {index}"), e))?;
            // Sector offsets fit in 32 bits: the file stays under 2 TiB + a BAT.
            bat[index as usize] = (at / 512) as u32;
            *next += BITMAP + u64::from(BLOCK);
            Ok(())
        };
        match chunk {
            Some(chunk) => blocks.push(chunk, &mut emit),
            None => blocks.finish(&mut emit),
        }
    }
}

impl DiskWriter for DynamicVhdWriter {
    fn sequential(&self) -> bool {
        false
    }

    fn write_chunk(&mut self, chunk: &Chunk) -> Result<(), DiskError> {
        self.emit(Some(chunk))
    }

    fn finish(mut self: Box<Self>) -> Result<u64, DiskError> {
        self.emit(None)?;
        let footer = Footer::ours(DYNAMIC, self.size, FOOTER_LEN as u64).to_bytes();
        let header = DynamicHeader {
            table_offset: TABLE_OFFSET,
            max_table_entries: self.bat.len() as u32,
            block_size: BLOCK,
        }
        .to_bytes();
        let bat: Vec<u8> = self.bat.iter().flat_map(|e| e.to_be_bytes()).collect();
        let bat_end = TABLE_OFFSET + bat.len() as u64;
        let padding =
            vec![0xffu8; ((bat.len() as u64).div_ceil(512) * 512 - bat.len() as u64) as usize];
        let len = self.next + FOOTER_LEN as u64;
        let sink = &mut self.sink;
        sink.write_at(0, &footer)
            .and_then(|()| sink.write_at(FOOTER_LEN as u64, &header))
            .and_then(|()| sink.write_at(TABLE_OFFSET, &bat))
            .and_then(|()| sink.write_at(bat_end, &padding))
            .and_then(|()| sink.write_at(self.next, &footer))
            .map_err(|e| DiskError::io("write the VHD's tables", e))?;
        self.sink
            .finish(len)
            .map_err(|e| DiskError::io("finish the VHD", e))?;
        Ok(len)
    }
}
