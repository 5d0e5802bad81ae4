//! Writing a qcow2 version 3 image: 64 KiB clusters, 16-bit refcounts, only clusters with
//! data allocated.
//!
//! Layout: the header in cluster 0, the L1 table right after it (its size is known up
//! front), then data clusters in disk order with each L2 table written as soon as the input
//! has passed the 512 MiB it covers, then the refcount blocks and table. Every cluster of the
//! file is used exactly once, so every refcount is 1 and the refcounts need no per-cluster
//! state: memory is one cluster being assembled, one L2 table and the L1 table (8 bytes per
//! 512 MiB of disk).

use super::super::blocks::Blocks;
use super::super::{Chunk, DiskError, DiskWriter, OutputSink};
use super::{COPIED, MAGIC};

const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
const L2_ENTRIES: u64 = CLUSTER / 8;
/// 16-bit refcounts.
const REFCOUNT_ORDER: u32 = 4;
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER / 2;
/// Header length: the version 3 fields, the compression type byte, padding to 8.
const HEADER_LEN: u32 = 112;

/// See the module documentation.
pub(crate) struct Qcow2Writer {
    sink: Box<dyn OutputSink>,
    blocks: Blocks,
    size: u64,
    l1: Vec<u64>,
    /// The L2 table being filled: its L1 index and entries.
    l2: Option<(u64, Vec<u64>)>,
    /// The next free host cluster.
    next: u64,
}

impl Qcow2Writer {
    /// The virtual size a qcow2 image of a `virtual_size`-byte disk has: whole sectors, as
    /// qemu counts them.
    pub(crate) fn size_for(virtual_size: u64) -> u64 {
        virtual_size.div_ceil(512) * 512
    }

    pub(crate) fn new(virtual_size: u64, sink: Box<dyn OutputSink>) -> Self {
        let size = Self::size_for(virtual_size);
        let l1_entries = size.div_ceil(CLUSTER * L2_ENTRIES);
        let l1_clusters = (l1_entries * 8).div_ceil(CLUSTER).max(1);
        Self {
            sink,
            blocks: Blocks::new(CLUSTER as usize, virtual_size),
            size,
            l1: vec![0; l1_entries as usize],
            l2: None,
            next: 1 + l1_clusters,
        }
    }

    /// Takes the next chunk (or, with `None`, the end of the input) and writes the clusters
    /// and L2 tables it completes.
    fn feed(&mut self, chunk: Option<&Chunk>) -> Result<(), DiskError> {
        let Self {
            sink,
            blocks,
            l1,
            l2,
            next,
            ..
        } = self;
        let mut emit = |index: u64, data: &[u8]| -> Result<(), DiskError> {
            let l1_index = index / L2_ENTRIES;
            if l2.as_ref().is_some_and(|(i, _)| *i != l1_index) {
                write_l2(sink.as_mut(), l1, l2, next)?;
            }
            let (_, table) = l2.get_or_insert_with(|| (l1_index, vec![0; L2_ENTRIES as usize]));
            let at = *next * CLUSTER;
            sink.write_at(at, data)
                .map_err(|e| DiskError::io(format!("write qcow2 cluster {index}"), e))?;
            table[(index % L2_ENTRIES) as usize] = at | COPIED;
            *next += 1;
            Ok(())
        };
        match chunk {
            Some(chunk) => blocks.push(chunk, &mut emit),
            None => {
                blocks.finish(&mut emit)?;
                write_l2(sink.as_mut(), l1, l2, next)
            }
        }
    }
}

/// Writes the L2 table being filled, if any, at the next free cluster and points L1 to it.
fn write_l2(
    sink: &mut dyn OutputSink,
    l1: &mut [u64],
    l2: &mut Option<(u64, Vec<u64>)>,
    next: &mut u64,
) -> Result<(), DiskError> {
    let Some((index, table)) = l2.take() else {
        return Ok(());
    };
    let at = *next * CLUSTER;
    sink.write_at(at, &be_bytes(&table))
        .map_err(|e| DiskError::io(format!("write qcow2 L2 table {index}"), e))?;
    l1[index as usize] = at | COPIED;
    *next += 1;
    Ok(())
}

fn be_bytes(entries: &[u64]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.to_be_bytes()).collect()
}

/// How many refcount blocks and refcount table clusters a file of `used` clusters needs,
/// counting the refcount clusters themselves.
pub(crate) fn refcount_layout(used: u64) -> (u64, u64) {
    let (mut blocks, mut table) = (0, 0);
    loop {
        let total = used + blocks + table;
        let new_blocks = total.div_ceil(REFCOUNTS_PER_BLOCK);
        let new_table = (new_blocks * 8).div_ceil(CLUSTER).max(1);
        if (new_blocks, new_table) == (blocks, table) {
            return (blocks, table);
        }
        (blocks, table) = (new_blocks, new_table);
    }
}

impl DiskWriter for Qcow2Writer {
    fn sequential(&self) -> bool {
        false
    }

    fn write_chunk(&mut self, chunk: &Chunk) -> Result<(), DiskError> {
        self.feed(Some(chunk))
    }

    fn finish(mut self: Box<Self>) -> Result<u64, DiskError> {
        self.feed(None)?;
        let io = |what: &str| {
            let what = what.to_owned();
            move |e| DiskError::io(what, e)
        };
        let sink = &mut self.sink;

        // Refcount blocks, then the table: after all else, so they count themselves.
        let used = self.next;
        let (blocks, table_clusters) = refcount_layout(used);
        let total = used + blocks + table_clusters;
        let table_at = used;
        let first_block = used + table_clusters;
        let mut table = vec![0u64; (table_clusters * CLUSTER / 8) as usize];
        for block in 0..blocks {
            let covered = (total - block * REFCOUNTS_PER_BLOCK).min(REFCOUNTS_PER_BLOCK);
            let mut refcounts = vec![0u8; CLUSTER as usize];
            for entry in refcounts.chunks_exact_mut(2).take(covered as usize) {
                entry.copy_from_slice(&1u16.to_be_bytes());
            }
            let at = (first_block + block) * CLUSTER;
            sink.write_at(at, &refcounts)
                .map_err(io("write a qcow2 refcount block"))?;
            table[block as usize] = at;
        }
        sink.write_at(table_at * CLUSTER, &be_bytes(&table))
            .map_err(io("write the qcow2 refcount table"))?;

        sink.write_at(CLUSTER, &be_bytes(&self.l1))
            .map_err(io("write the qcow2 L1 table"))?;
        let header = header(
            self.size,
            self.l1.len() as u32,
            table_at * CLUSTER,
            table_clusters as u32,
        );
        sink.write_at(0, &header)
            .map_err(io("write the qcow2 header"))?;
        let len = total * CLUSTER;
        self.sink
            .finish(len)
            .map_err(io("finish the qcow2 image"))?;
        Ok(len)
    }
}

/// The header, followed by the end-of-extensions marker.
fn header(size: u64, l1_entries: u32, refcount_table: u64, refcount_clusters: u32) -> Vec<u8> {
    let mut h = vec![0u8; HEADER_LEN as usize + 8];
    h[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    // 8..20: no backing file.
    h[20..24].copy_from_slice(&CLUSTER_BITS.to_be_bytes());
    h[24..32].copy_from_slice(&size.to_be_bytes());
    // 32..36: no encryption.
    h[36..40].copy_from_slice(&l1_entries.to_be_bytes());
    h[40..48].copy_from_slice(&CLUSTER.to_be_bytes());
    h[48..56].copy_from_slice(&refcount_table.to_be_bytes());
    h[56..60].copy_from_slice(&refcount_clusters.to_be_bytes());
    // 60..72: no snapshots; 72..96: no incompatible, compatible or autoclear features.
    h[96..100].copy_from_slice(&REFCOUNT_ORDER.to_be_bytes());
    h[100..104].copy_from_slice(&HEADER_LEN.to_be_bytes());
    // 104: compression type deflate (0); then padding and the zero end-of-extensions marker.
    h
}

#[cfg(test)]
mod tests {
    use super::super::header;
    use super::*;

    #[test]
    fn refcounts_cover_themselves() {
        assert_eq!(refcount_layout(3), (1, 1));
        // One block covers 32768 clusters: 32766 used + 1 block + 1 table fit exactly.
        assert_eq!(refcount_layout(32766), (1, 1));
        assert_eq!(refcount_layout(32767), (2, 1));
        // 8192 blocks fill one table cluster.
        let (blocks, table) = refcount_layout(8192 * 32768);
        assert_eq!((blocks, table), (8193, 2));
    }

    #[test]
    fn our_header_parses_as_what_we_meant() {
        let bytes = header(8 << 30, 16, 10 * CLUSTER, 1);
        let mut cluster = bytes.clone();
        cluster.resize(CLUSTER as usize, 0);
        let parsed = header::parse(&cluster, 11 * CLUSTER).unwrap();
        assert_eq!(parsed.size, 8 << 30);
        assert_eq!(parsed.cluster_bits, 16);
        assert_eq!(parsed.l1_offset, CLUSTER);
        assert_eq!(parsed.l1_entries, 16);
    }
}
