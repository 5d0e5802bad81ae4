//! Reading fixed and dynamic VHDs.

use std::fs::File;
use std::path::{Path, PathBuf};

use bytes::BytesMut;

use super::super::file;
use super::super::raw::RawReader;
use super::super::zero::is_zero;
use super::super::{Chunk, ChunkData, DiskError, DiskReader, MAX_CHUNK, MAX_VIRTUAL_SIZE};
use super::footer::{Footer, DYNAMIC, FIXED, FOOTER_LEN};
use super::header::{DynamicHeader, HEADER_LEN};

/// The most BAT entries we hold (16 MiB of table): 2 MiB blocks over 8 TiB.
const MAX_BAT_ENTRIES: u64 = 4 << 20;
const ABSENT: u32 = u32::MAX;

/// Opens a VHD, fixed or dynamic, after checking its footer.
pub(crate) fn open(path: &Path) -> Result<Box<dyn DiskReader>, DiskError> {
    let file = file::open(path)?;
    let len = file::len(&file, path)?;
    if len < FOOTER_LEN as u64 {
        return Err(DiskError::invalid(path, "too short for a VHD footer"));
    }
    let mut buf = [0u8; FOOTER_LEN];
    file::read_exact_at(&file, path, &mut buf, len - FOOTER_LEN as u64)?;
    let footer = Footer::parse(&buf).map_err(|m| DiskError::invalid(path, m))?;
    let size = footer.virtual_size();
    if size > MAX_VIRTUAL_SIZE {
        return Err(DiskError::invalid(
            path,
            format!("virtual size {size} is over our limit of {MAX_VIRTUAL_SIZE} bytes"),
        ));
    }
    match footer.disk_type {
        FIXED => {
            if size > len - FOOTER_LEN as u64 {
                return Err(DiskError::invalid(
                    path,
                    format!("a fixed VHD of {size} bytes cannot be in a file of {len} bytes"),
                ));
            }
            Ok(Box::new(RawReader::new(file, path, size)))
        }
        DYNAMIC => Ok(Box::new(DynamicVhdReader::open(
            file, path, len, &footer, size,
        )?)),
        4 => Err(DiskError::invalid(
            path,
            "a differencing VHD: its parent is not read",
        )),
        other => Err(DiskError::invalid(
            path,
            format!("VHD disk type {other} is neither fixed (2) nor dynamic (3)"),
        )),
    }
}

/// A dynamic VHD: absent blocks read as zeros; allocated blocks are read whole, their sector
/// bitmaps ignored, as qemu does for disks without a parent.
struct DynamicVhdReader {
    file: File,
    path: PathBuf,
    size: u64,
    block: u64,
    bitmap: u64,
    bat: Vec<u32>,
    pos: u64,
}

impl DynamicVhdReader {
    fn open(
        file: File,
        path: &Path,
        len: u64,
        footer: &Footer,
        size: u64,
    ) -> Result<Self, DiskError> {
        let invalid = |m: String| DiskError::invalid(path, m);
        let at = footer.data_offset;
        if at < FOOTER_LEN as u64
            || at
                .checked_add(HEADER_LEN as u64)
                .is_none_or(|end| end > len)
        {
            return Err(invalid(format!(
                "dynamic header offset {at} is outside the file"
            )));
        }
        let mut buf = [0u8; HEADER_LEN];
        file::read_exact_at(&file, path, &mut buf, at)?;
        let header = DynamicHeader::parse(&buf).map_err(invalid)?;
        let block = u64::from(header.block_size);
        if !block.is_power_of_two() || block < 512 {
            return Err(invalid(format!(
                "block size {block} is not a power of two of at least 512"
            )));
        }
        let needed = size.div_ceil(block);
        let entries = u64::from(header.max_table_entries);
        if entries < needed {
            return Err(invalid(format!(
                "{entries} BAT entries of {block} bytes do not cover {size} bytes"
            )));
        }
        if needed > MAX_BAT_ENTRIES {
            return Err(invalid(format!(
                "{needed} blocks are more than the {MAX_BAT_ENTRIES} we read"
            )));
        }
        let table = header.table_offset;
        if table < FOOTER_LEN as u64 || table.checked_add(needed * 4).is_none_or(|end| end > len) {
            return Err(invalid(format!("BAT offset {table} is outside the file")));
        }
        let mut raw = vec![0u8; (needed * 4) as usize];
        file::read_exact_at(&file, path, &mut raw, table)?;
        let bitmap = (block / 512 / 8).div_ceil(512) * 512;
        let bat: Vec<u32> = raw
            .chunks_exact(4)
            .map(|e| u32::from_be_bytes([e[0], e[1], e[2], e[3]]))
            .collect();
        for (index, &entry) in bat.iter().enumerate() {
            if entry == ABSENT {
                continue;
            }
            let start = u64::from(entry) * 512;
            if start < FOOTER_LEN as u64 || start + bitmap + block > len {
                return Err(invalid(format!(
                    "block {index} at {start} is outside the file"
                )));
            }
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            size,
            block,
            bitmap,
            bat,
            pos: 0,
        })
    }
}

impl DiskReader for DynamicVhdReader {
    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, DiskError> {
        if self.pos >= self.size {
            return Ok(None);
        }
        let offset = self.pos;
        let index = (self.pos / self.block) as usize;
        let within = self.pos % self.block;
        let entry = self.bat[index];
        if entry == ABSENT {
            let absent = self.bat[index..]
                .iter()
                .take_while(|&&e| e == ABSENT)
                .count() as u64;
            let end = ((index as u64 + absent) * self.block).min(self.size);
            self.pos = end;
            return Ok(Some(Chunk {
                offset,
                data: ChunkData::Zero(end - offset),
            }));
        }
        let len = (self.block - within)
            .min(self.size - self.pos)
            .min(MAX_CHUNK as u64) as usize;
        let mut buf = BytesMut::zeroed(len);
        let at = u64::from(entry) * 512 + self.bitmap + within;
        file::read_exact_at(&self.file, &self.path, &mut buf, at)?;
        self.pos += len as u64;
        let data = if is_zero(&buf) {
            ChunkData::Zero(len as u64)
        } else {
            ChunkData::Data(buf.freeze())
        };
        Ok(Some(Chunk { offset, data }))
    }
}
