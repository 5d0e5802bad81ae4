//! Reading a qcow2 image's active layer.

use std::fs::File;
use std::path::{Path, PathBuf};

use flate2::{Decompress, FlushDecompress};

use super::super::file;
use super::super::{Chunk, ChunkData, DiskError, DiskReader, MAX_CHUNK};
use super::header::{self, Header};
use super::{COMPRESSED, COPIED, OFFSET_MASK, ZERO};

/// Where one cluster's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cluster {
    /// Unallocated or a zero cluster: reads as zeros.
    Zero,
    /// Stored as is at this host offset.
    Data(u64),
    /// Deflated at this host offset, in at most this many bytes.
    Compressed(u64, u64),
}

/// Reads a qcow2 file's virtual disk in order. Memory: the L1 table (bounded by the header
/// checks), one L2 table and one cluster of inflated data at a time, which is all a sequential
/// reader needs, and the chunk being built.
pub(crate) struct Qcow2Reader {
    file: File,
    path: PathBuf,
    file_len: u64,
    header: Header,
    l1: Vec<u64>,
    /// The L2 table last loaded, by its host offset.
    l2: Option<(u64, Vec<u64>)>,
    inflater: Decompress,
    /// Inflated data of the compressed cluster last read, by its host offset.
    inflated: Option<(u64, Vec<u8>)>,
    pos: u64,
}

impl Qcow2Reader {
    /// Opens `path` after checking its header and loading its L1 table.
    pub(crate) fn open(path: &Path) -> Result<Self, DiskError> {
        let file = file::open(path)?;
        let file_len = file::len(&file, path)?;
        // The largest cluster is 2 MiB; the header cluster is read once.
        let mut buf = vec![0u8; file_len.min(1 << 21) as usize];
        file::read_exact_at(&file, path, &mut buf, 0)?;
        let mut header = header::parse(&buf, file_len);
        if let Ok(h) = &header {
            buf.truncate(h.cluster_size().min(file_len) as usize);
            header = header::parse(&buf, file_len);
        }
        let header = header.map_err(|m| DiskError::invalid(path, m))?;
        let mut raw = vec![0u8; (header.l1_entries * 8) as usize];
        file::read_exact_at(&file, path, &mut raw, header.l1_offset)?;
        let l1 = raw
            .chunks_exact(8)
            .map(|e| u64::from_be_bytes(e.try_into().unwrap_or_default()))
            .collect();
        Ok(Self {
            file,
            path: path.to_owned(),
            file_len,
            header,
            l1,
            l2: None,
            inflater: Decompress::new(false),
            inflated: None,
            pos: 0,
        })
    }

    fn invalid(&self, message: String) -> DiskError {
        DiskError::invalid(&self.path, message)
    }

    fn cluster_size(&self) -> u64 {
        self.header.cluster_size()
    }

    fn l2_entries(&self) -> u64 {
        self.cluster_size() / 8
    }

    /// Checks a standard cluster or table offset: aligned, past the header, starts in the file.
    fn check_offset(&self, what: &str, offset: u64) -> Result<(), DiskError> {
        if !offset.is_multiple_of(self.cluster_size()) {
            return Err(self.invalid(format!("{what} offset {offset:#x} is not cluster-aligned")));
        }
        if offset < self.cluster_size() {
            return Err(self.invalid(format!("{what} offset {offset:#x} overlaps the header")));
        }
        if offset >= self.file_len {
            return Err(self.invalid(format!(
                "{what} offset {offset:#x} is past the end of the file"
            )));
        }
        Ok(())
    }

    /// The L2 table for L1 index `index`, or `None` when the whole range is unallocated.
    fn l2_table(&mut self, index: u64) -> Result<Option<&[u64]>, DiskError> {
        let entry = self.l1[index as usize];
        if entry & !(OFFSET_MASK | COPIED) != 0 {
            return Err(self.invalid(format!(
                "L1 entry {index} has reserved bits set: {entry:#x}"
            )));
        }
        let offset = entry & OFFSET_MASK;
        if offset == 0 {
            return Ok(None);
        }
        if self.l2.as_ref().is_none_or(|(at, _)| *at != offset) {
            self.check_offset("L2 table", offset)?;
            if offset + self.cluster_size() > self.file_len {
                return Err(self.invalid(format!(
                    "L2 table at {offset:#x} runs past the end of the file"
                )));
            }
            let mut raw = vec![0u8; self.cluster_size() as usize];
            file::read_exact_at(&self.file, &self.path, &mut raw, offset)?;
            let table = raw
                .chunks_exact(8)
                .map(|e| u64::from_be_bytes(e.try_into().unwrap_or_default()))
                .collect();
            self.l2 = Some((offset, table));
        }
        Ok(self.l2.as_ref().map(|(_, table)| table.as_slice()))
    }

    /// What the cluster holding guest offset `pos` is, and how many bytes of the disk from
    /// `pos` are known to be like it when that is zero (a whole unallocated L2 range).
    fn cluster_at(&mut self, pos: u64) -> Result<(Cluster, u64), DiskError> {
        let cluster_bits = self.header.cluster_bits;
        let cluster = pos >> cluster_bits;
        let l2_entries = self.l2_entries();
        let Some(table) = self.l2_table(cluster / l2_entries)? else {
            let range = l2_entries << cluster_bits;
            return Ok((Cluster::Zero, range - pos % range));
        };
        let entry = table[(cluster % l2_entries) as usize];
        let rest = self.cluster_size() - pos % self.cluster_size();
        if entry & COMPRESSED != 0 {
            // Bits 0..x: host offset; x..62: additional 512-byte sectors; x = 70 - cluster_bits.
            let x = 70 - cluster_bits;
            let host = entry & ((1 << x) - 1);
            let sectors = (entry & !(COPIED | COMPRESSED)) >> x;
            let len = (sectors + 1) * 512 - (host & 511);
            if host < self.cluster_size() || host >= self.file_len {
                return Err(self.invalid(format!(
                    "compressed cluster at {host:#x} is outside the file or overlaps the header"
                )));
            }
            return Ok((Cluster::Compressed(host, len), rest));
        }
        if entry & !(OFFSET_MASK | COPIED | ZERO) != 0 {
            return Err(self.invalid(format!("L2 entry has reserved bits set: {entry:#x}")));
        }
        if entry & ZERO != 0 {
            if self.header.version < 3 {
                return Err(self.invalid(format!(
                    "L2 entry {entry:#x} sets the zero flag, which version 2 does not have"
                )));
            }
            return Ok((Cluster::Zero, rest));
        }
        let host = entry & OFFSET_MASK;
        if host == 0 {
            return Ok((Cluster::Zero, rest));
        }
        self.check_offset("data cluster", host)?;
        Ok((Cluster::Data(host), rest))
    }

    /// Inflates the compressed cluster at `host` (cached: a chunk may end inside one).
    fn inflate(&mut self, host: u64, len: u64) -> Result<&[u8], DiskError> {
        if self.inflated.as_ref().is_none_or(|(at, _)| *at != host) {
            // The sector count is an upper bound: the last cluster may end before it.
            let len = len.min(self.file_len - host) as usize;
            let mut input = vec![0u8; len];
            file::read_exact_at(&self.file, &self.path, &mut input, host)?;
            let mut out = vec![0u8; self.cluster_size() as usize];
            self.inflater.reset(false);
            let result = self
                .inflater
                .decompress(&input, &mut out, FlushDecompress::Finish);
            // Like qemu: a full cluster is success, whatever follows in the stream.
            if result.is_err() || self.inflater.total_out() != out.len() as u64 {
                return Err(self.invalid(format!(
                    "compressed cluster at {host:#x} does not inflate to a whole cluster"
                )));
            }
            self.inflated = Some((host, out));
        }
        Ok(self
            .inflated
            .as_ref()
            .map(|(_, data)| data.as_slice())
            .unwrap_or_default())
    }
}

impl DiskReader for Qcow2Reader {
    fn virtual_size(&self) -> u64 {
        self.header.size
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, DiskError> {
        let size = self.header.size;
        if self.pos >= size {
            return Ok(None);
        }
        let offset = self.pos;
        let cluster_size = self.cluster_size();

        // A zero run: as many zero clusters (and unallocated L2 ranges) as follow.
        let mut end = self.pos;
        while end < size {
            let (cluster, len) = self.cluster_at(end)?;
            if cluster != Cluster::Zero {
                break;
            }
            end = (end + len).min(size);
        }
        if end > offset {
            self.pos = end;
            return Ok(Some(Chunk {
                offset,
                data: ChunkData::Zero(end - offset),
            }));
        }

        // A data run: clusters until a zero one or MAX_CHUNK bytes. Runs of clusters that are
        // contiguous in the file are read with one call.
        let mut buf = Vec::with_capacity(MAX_CHUNK.min((size - offset) as usize));
        let mut pending: Option<(u64, usize)> = None; // host offset, length
        while self.pos < size && self.pos - offset < MAX_CHUNK as u64 {
            let (cluster, rest) = self.cluster_at(self.pos)?;
            let within = self.pos % cluster_size;
            let room = MAX_CHUNK as u64 - (self.pos - offset);
            let len = rest.min(size - self.pos).min(room) as usize;
            match cluster {
                Cluster::Zero => break,
                Cluster::Data(host) => {
                    let host = host + within;
                    pending = match pending {
                        Some((start, n)) if start + n as u64 == host => Some((start, n + len)),
                        other => {
                            if let Some((start, n)) = other {
                                self.read_into(&mut buf, start, n)?;
                            }
                            Some((host, len))
                        }
                    };
                }
                Cluster::Compressed(host, clen) => {
                    if let Some((start, n)) = pending.take() {
                        self.read_into(&mut buf, start, n)?;
                    }
                    let within = within as usize;
                    buf.extend_from_slice(&self.inflate(host, clen)?[within..within + len]);
                }
            }
            self.pos += len as u64;
        }
        if let Some((start, n)) = pending {
            self.read_into(&mut buf, start, n)?;
        }
        debug_assert_eq!(buf.len() as u64, self.pos - offset);
        Ok(Some(Chunk {
            offset,
            data: ChunkData::Data(buf.into()),
        }))
    }
}

impl Qcow2Reader {
    /// Appends `n` bytes from host offset `start`; what lies past the file's end reads as
    /// zeros, as qemu reads a last cluster the file cuts short.
    fn read_into(&self, buf: &mut Vec<u8>, start: u64, n: usize) -> Result<(), DiskError> {
        let at = buf.len();
        buf.resize(at + n, 0);
        file::read_padded_at(&self.file, &self.path, &mut buf[at..], start)
    }
}
