//! Cuts the chunk stream into the fixed-size blocks a format allocates (qcow2 clusters, VHD
//! blocks), and hands on only the blocks that are not all zeros.

use super::raw::check_order;
use super::zero::is_zero;
use super::{Chunk, ChunkData, DiskError};

/// Receives each non-zero block: its index in the disk and its bytes.
pub(crate) type Emit<'a> = dyn FnMut(u64, &[u8]) -> Result<(), DiskError> + 'a;

/// Gathers chunks into blocks of `block` bytes.
///
/// Invariant: `buf` holds the current block's bytes before `pos % block` and zeros after, so a
/// zero run or the end of the disk never has to write into it.
pub(crate) struct Blocks {
    block: usize,
    buf: Vec<u8>,
    dirty: bool,
    pos: u64,
    size: u64,
}

impl Blocks {
    /// Blocks of `block` bytes over a virtual disk of `size` bytes.
    pub(crate) fn new(block: usize, size: u64) -> Self {
        Self {
            block,
            buf: vec![0; block],
            dirty: false,
            pos: 0,
            size,
        }
    }

    fn within(&self) -> usize {
        (self.pos % self.block as u64) as usize
    }

    /// Emits the block that `pos` just completed (or, at the end, the partial last block).
    fn flush(&mut self, index: u64, emit: &mut Emit<'_>) -> Result<(), DiskError> {
        if self.dirty {
            if !is_zero(&self.buf) {
                emit(index, &self.buf)?;
            }
            self.buf.fill(0);
            self.dirty = false;
        }
        Ok(())
    }

    /// Takes the next chunk; calls `emit(index, block)` for each completed non-zero block.
    pub(crate) fn push(&mut self, chunk: &Chunk, emit: &mut Emit<'_>) -> Result<(), DiskError> {
        check_order(chunk, self.pos, self.size)?;
        let block = self.block as u64;
        match &chunk.data {
            ChunkData::Data(bytes) => {
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let within = self.within();
                    if within == 0 && rest.len() >= self.block {
                        // A whole block straight from the chunk: no copy.
                        let (whole, after) = rest.split_at(self.block);
                        if !is_zero(whole) {
                            emit(self.pos / block, whole)?;
                        }
                        self.pos += block;
                        rest = after;
                        continue;
                    }
                    let n = (self.block - within).min(rest.len());
                    self.buf[within..within + n].copy_from_slice(&rest[..n]);
                    self.dirty = true;
                    self.pos += n as u64;
                    rest = &rest[n..];
                    if within + n == self.block {
                        self.flush(self.pos / block - 1, emit)?;
                    }
                }
            }
            ChunkData::Zero(len) => {
                let mut len = *len;
                let within = self.within();
                if within != 0 {
                    let n = (self.block - within) as u64;
                    if len < n {
                        self.pos += len;
                        return Ok(());
                    }
                    self.pos += n;
                    len -= n;
                    self.flush(self.pos / block - 1, emit)?;
                }
                self.pos += len;
            }
        }
        Ok(())
    }

    /// Emits the partial last block, if any; fails unless the whole disk came.
    pub(crate) fn finish(&mut self, emit: &mut Emit<'_>) -> Result<(), DiskError> {
        if self.pos != self.size {
            return Err(DiskError::ChunkOrder {
                message: format!(
                    "finished after {} bytes of a {}-byte disk",
                    self.pos, self.size
                ),
            });
        }
        if self.within() != 0 {
            self.flush(self.pos / self.block as u64, emit)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn run(block: usize, size: u64, chunks: &[Chunk]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut blocks = Blocks::new(block, size);
        let mut emit = |i: u64, b: &[u8]| {
            out.push((i, b.to_vec()));
            Ok(())
        };
        for chunk in chunks {
            blocks.push(chunk, &mut emit).unwrap();
        }
        blocks.finish(&mut emit).unwrap();
        out
    }

    fn data(offset: u64, bytes: &[u8]) -> Chunk {
        Chunk {
            offset,
            data: ChunkData::Data(Bytes::copy_from_slice(bytes)),
        }
    }

    fn zero(offset: u64, len: u64) -> Chunk {
        Chunk {
            offset,
            data: ChunkData::Zero(len),
        }
    }

    #[test]
    fn only_nonzero_blocks_come_out_padded_at_the_end() {
        let out = run(
            4,
            14,
            &[
                data(0, &[1, 2, 3, 4, 0, 0]),
                zero(6, 3),
                data(9, &[0, 0, 9]),
                data(12, &[7, 8]),
            ],
        );
        assert_eq!(
            out,
            vec![
                (0, vec![1, 2, 3, 4]),
                (2, vec![0, 0, 0, 9]),
                (3, vec![7, 8, 0, 0])
            ]
        );
    }

    #[test]
    fn a_zero_run_inside_a_block_keeps_the_data_before_it() {
        let out = run(8, 16, &[data(0, &[5]), zero(1, 14), data(15, &[6])]);
        assert_eq!(
            out,
            vec![
                (0, vec![5, 0, 0, 0, 0, 0, 0, 0]),
                (1, vec![0, 0, 0, 0, 0, 0, 0, 6])
            ]
        );
    }

    #[test]
    fn gaps_overlaps_and_short_streams_are_refused() {
        let mut blocks = Blocks::new(4, 8);
        let mut emit = |_: u64, _: &[u8]| Ok(());
        assert!(blocks.push(&zero(1, 2), &mut emit).is_err());
        assert!(blocks.push(&zero(0, 9), &mut emit).is_err());
        blocks.push(&zero(0, 4), &mut emit).unwrap();
        assert!(blocks.finish(&mut emit).is_err());
    }
}
