//! qcow2: reading versions 2 and 3 (with deflate-compressed clusters), writing version 3.
//!
//! The format is described in qemu's `docs/interop/qcow2.txt`. A guest offset splits into an
//! L1 index, an L2 index and an offset in the cluster; the L1 table points to L2 tables, whose
//! entries point to data clusters (or mark them compressed, zero or unallocated). Refcounts
//! track which host clusters are used; a reader needs none of them.

mod header;
mod reader;
mod writer;

pub(crate) use reader::Qcow2Reader;
pub(crate) use writer::Qcow2Writer;

/// `QFI\xfb`.
pub(crate) const MAGIC: u32 = 0x5146_49fb;
/// Bits 9..=55 of an L1 or standard L2 entry: the host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L1/L2 entry bit 63: the cluster's refcount is exactly one.
const COPIED: u64 = 1 << 63;
/// L2 entry bit 62: the cluster is compressed.
const COMPRESSED: u64 = 1 << 62;
/// L2 entry bit 0 (version 3): the cluster reads as zeros.
const ZERO: u64 = 1;
