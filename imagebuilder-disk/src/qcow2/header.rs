//! The qcow2 header and its extensions: parsed, then checked against what we read and against
//! the file, so the reader can trust every number it keeps.

use std::fmt::Write as _;

use super::super::file::{be_u32, be_u64};
use super::super::MAX_VIRTUAL_SIZE;
use super::MAGIC;

/// Incompatible feature bits.
const DIRTY: u64 = 1 << 0;
const CORRUPT: u64 = 1 << 1;
const EXTERNAL_DATA_FILE: u64 = 1 << 2;
const COMPRESSION_TYPE: u64 = 1 << 3;
const EXTENDED_L2: u64 = 1 << 4;

/// Header extension types that change how the image must be read.
const EXT_END: u32 = 0;
const EXT_FULL_DISK_ENCRYPTION: u32 = 0x0537_be77;
const EXT_EXTERNAL_DATA_FILE: u32 = 0x4441_5441;

/// The most L1 entries we load (32 MiB of table), as qemu limits it.
const MAX_L1_ENTRIES: u64 = 4 << 20;
/// Bytes of the fixed part of a version 2 header.
const V2_HEADER_LEN: usize = 72;
/// Bytes of the fixed part of a version 3 header, without the compression type.
const V3_HEADER_LEN: usize = 104;

/// What the reader needs from a valid header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u32,
    pub(crate) cluster_bits: u32,
    pub(crate) size: u64,
    pub(crate) l1_offset: u64,
    /// L1 entries that cover `size` (the table may have more).
    pub(crate) l1_entries: u64,
}

impl Header {
    /// Bytes per cluster.
    pub(crate) fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }
}

/// Parses and checks the header in `buf`, the file's first cluster (or all of a shorter file);
/// `file_len` bounds every table. Errors say what is wrong, for [`DiskError::Invalid`].
///
/// [`DiskError::Invalid`]: super::super::DiskError::Invalid
pub(crate) fn parse(buf: &[u8], file_len: u64) -> Result<Header, String> {
    if buf.len() < V2_HEADER_LEN || be_u32(buf, 0) != MAGIC {
        return Err("not a qcow2 image (no QFI\\xfb magic)".into());
    }
    let version = be_u32(buf, 4);
    if version != 2 && version != 3 {
        return Err(format!("qcow2 version {version} is neither 2 nor 3"));
    }
    let cluster_bits = be_u32(buf, 20);
    if !(9..=21).contains(&cluster_bits) {
        return Err(format!("cluster_bits {cluster_bits} is outside 9..=21"));
    }
    let cluster = 1u64 << cluster_bits;
    if (buf.len() as u64) < cluster.min(file_len) {
        return Err("the header cluster was not read whole".into());
    }
    let size = be_u64(buf, 24);
    if size > MAX_VIRTUAL_SIZE {
        return Err(format!(
            "virtual size {size} is over our limit of {MAX_VIRTUAL_SIZE} bytes"
        ));
    }
    let (incompatible, header_len) = if version == 3 {
        if buf.len() < V3_HEADER_LEN {
            return Err("version 3 header cut short".into());
        }
        let header_len = be_u32(buf, 100) as usize;
        if header_len < V3_HEADER_LEN
            || !header_len.is_multiple_of(8)
            || header_len as u64 > cluster
        {
            return Err(format!(
                "header length {header_len} is not a multiple of 8 in {V3_HEADER_LEN}..={cluster}"
            ));
        }
        if header_len > buf.len() {
            return Err("the header is longer than the file".into());
        }
        (be_u64(buf, 72), header_len)
    } else {
        (0, V2_HEADER_LEN)
    };

    let backing_offset = be_u64(buf, 8);
    if backing_offset != 0 {
        let name = backing_name(buf, backing_offset, be_u32(buf, 16));
        return Err(format!(
            "has a backing file{name}; convert it with its backing file first (qemu-img convert)"
        ));
    }
    if be_u32(buf, 32) != 0 {
        return Err("is encrypted".into());
    }
    check_features(buf, incompatible, header_len)?;
    check_extensions(buf, header_len)?;

    let l2_entries = cluster / 8;
    let l1_entries = size.div_ceil(cluster * l2_entries);
    let l1_size = u64::from(be_u32(buf, 36));
    if l1_size < l1_entries {
        return Err(format!(
            "L1 table of {l1_size} entries is too small for {size} bytes"
        ));
    }
    if l1_entries > MAX_L1_ENTRIES {
        return Err(format!(
            "L1 table of {l1_entries} entries is larger than the {MAX_L1_ENTRIES} we read"
        ));
    }
    let l1_offset = be_u64(buf, 40);
    if l1_entries > 0 {
        check_table("L1 table", l1_offset, l1_entries * 8, cluster, file_len)?;
    }
    let refcount_offset = be_u64(buf, 48);
    let refcount_clusters = u64::from(be_u32(buf, 56));
    check_table(
        "refcount table",
        refcount_offset,
        refcount_clusters.max(1) * cluster,
        cluster,
        file_len,
    )?;
    Ok(Header {
        version,
        cluster_bits,
        size,
        l1_offset,
        l1_entries,
    })
}

/// `offset..offset + len` is cluster-aligned, after the header cluster and inside the file.
fn check_table(
    what: &str,
    offset: u64,
    len: u64,
    cluster: u64,
    file_len: u64,
) -> Result<(), String> {
    if !offset.is_multiple_of(cluster) {
        return Err(format!("{what} offset {offset} is not cluster-aligned"));
    }
    if offset < cluster {
        return Err(format!("{what} offset {offset} overlaps the header"));
    }
    if offset.checked_add(len).is_none_or(|end| end > file_len) {
        return Err(format!(
            "{what} at {offset} ({len} bytes) runs past the end of the file ({file_len} bytes)"
        ));
    }
    Ok(())
}

fn check_features(buf: &[u8], incompatible: u64, header_len: usize) -> Result<(), String> {
    if incompatible & CORRUPT != 0 {
        return Err("is marked corrupt; repair it with qemu-img check -r all".into());
    }
    if incompatible & EXTERNAL_DATA_FILE != 0 {
        return Err("keeps its data in an external data file, which we do not read".into());
    }
    if incompatible & EXTENDED_L2 != 0 {
        return Err("uses extended L2 entries (subclusters), which we do not read".into());
    }
    let compression = if header_len > V3_HEADER_LEN {
        buf[V3_HEADER_LEN]
    } else {
        0
    };
    if compression != 0 || (incompatible & COMPRESSION_TYPE != 0 && header_len <= V3_HEADER_LEN) {
        let name = if compression == 1 { "zstd" } else { "unknown" };
        return Err(format!(
            "uses the {name} compression type ({compression}); we read deflate only"
        ));
    }
    let unknown =
        incompatible & !(DIRTY | CORRUPT | EXTERNAL_DATA_FILE | COMPRESSION_TYPE | EXTENDED_L2);
    if unknown != 0 {
        return Err(format!("uses unknown incompatible features {unknown:#x}"));
    }
    Ok(())
}

/// Walks the header extensions, bounded by the header cluster.
fn check_extensions(buf: &[u8], header_len: usize) -> Result<(), String> {
    let mut at = header_len;
    while at + 8 <= buf.len() {
        let kind = be_u32(buf, at);
        let len = be_u32(buf, at + 4) as usize;
        match kind {
            EXT_END => return Ok(()),
            EXT_FULL_DISK_ENCRYPTION => return Err("is encrypted".into()),
            EXT_EXTERNAL_DATA_FILE => {
                return Err("names an external data file, which we do not read".into())
            }
            _ => {}
        }
        let next = (at + 8).checked_add(len.div_ceil(8) * 8);
        match next {
            Some(next) if next <= buf.len() => at = next,
            _ => {
                return Err(format!(
                    "header extension {kind:#x} runs past the header cluster"
                ))
            }
        }
    }
    Ok(())
}

/// `" (name)"` when the backing file name lies in the header cluster, else nothing.
fn backing_name(buf: &[u8], offset: u64, len: u32) -> String {
    let (Ok(start), Ok(len)) = (usize::try_from(offset), usize::try_from(len)) else {
        return String::new();
    };
    match buf.get(start..start.saturating_add(len.min(1023))) {
        Some(name) if !name.is_empty() => {
            let mut out = String::from(" (");
            for c in String::from_utf8_lossy(name).chars() {
                if c.is_control() {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                } else {
                    out.push(c);
                }
            }
            out.push(')');
            out
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid version 3 header with 64 KiB clusters: L1 at cluster 3, refcounts at 1.
    fn v3(size: u64) -> Vec<u8> {
        let mut b = vec![0u8; 1 << 16];
        b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&3u32.to_be_bytes());
        b[20..24].copy_from_slice(&16u32.to_be_bytes());
        b[24..32].copy_from_slice(&size.to_be_bytes());
        b[36..40].copy_from_slice(&2u32.to_be_bytes());
        b[40..48].copy_from_slice(&(3u64 << 16).to_be_bytes());
        b[48..56].copy_from_slice(&(1u64 << 16).to_be_bytes());
        b[56..60].copy_from_slice(&1u32.to_be_bytes());
        b[96..100].copy_from_slice(&4u32.to_be_bytes());
        b[100..104].copy_from_slice(&112u32.to_be_bytes());
        b
    }

    const FILE: u64 = 4 << 16;

    #[test]
    fn a_valid_header_parses() {
        let header = parse(&v3(1 << 30), FILE).unwrap();
        assert_eq!(
            header,
            Header {
                version: 3,
                cluster_bits: 16,
                size: 1 << 30,
                l1_offset: 3 << 16,
                l1_entries: 2,
            }
        );
    }

    fn refused(b: &[u8], file_len: u64) -> String {
        parse(b, file_len).unwrap_err()
    }

    #[test]
    fn what_we_do_not_read_is_refused() {
        let mut b = v3(1 << 20);
        b[8..16].copy_from_slice(&200u64.to_be_bytes());
        b[16..20].copy_from_slice(&4u32.to_be_bytes());
        b[200..204].copy_from_slice(b"base");
        assert!(refused(&b, FILE).contains("backing file (base)"));

        let mut b = v3(1 << 20);
        b[32..36].copy_from_slice(&1u32.to_be_bytes());
        assert!(refused(&b, FILE).contains("encrypted"));

        for (bit, words) in [
            (EXTERNAL_DATA_FILE, "external data file"),
            (EXTENDED_L2, "extended L2"),
            (CORRUPT, "corrupt"),
            (1 << 9, "unknown incompatible features 0x200"),
        ] {
            let mut b = v3(1 << 20);
            b[72..80].copy_from_slice(&bit.to_be_bytes());
            assert!(refused(&b, FILE).contains(words), "{words}");
        }

        let mut b = v3(1 << 20);
        b[72..80].copy_from_slice(&COMPRESSION_TYPE.to_be_bytes());
        b[104] = 1;
        assert!(refused(&b, FILE).contains("zstd"));

        let mut b = v3(1 << 20);
        b[112..116].copy_from_slice(&EXT_EXTERNAL_DATA_FILE.to_be_bytes());
        b[116..120].copy_from_slice(&4u32.to_be_bytes());
        assert!(refused(&b, FILE).contains("external data file"));
    }

    #[test]
    fn the_dirty_bit_alone_is_fine() {
        let mut b = v3(1 << 20);
        b[72..80].copy_from_slice(&DIRTY.to_be_bytes());
        parse(&b, FILE).unwrap();
    }

    #[test]
    fn sizes_and_offsets_are_bounded() {
        assert!(refused(&v3(MAX_VIRTUAL_SIZE + 1), FILE).contains("over our limit"));
        // L1 past the end of the file.
        assert!(refused(&v3(1 << 20), 3 << 16).contains("past the end"));
        let mut b = v3(1 << 20);
        b[40..48].copy_from_slice(&0u64.to_be_bytes());
        assert!(refused(&b, FILE).contains("overlaps the header"));
        let mut b = v3(1 << 20);
        b[40..48].copy_from_slice(&1000u64.to_be_bytes());
        assert!(refused(&b, FILE).contains("not cluster-aligned"));
        // Two L1 entries cannot cover 2 GiB at 64 KiB clusters.
        assert!(refused(&v3(2 << 30), FILE).contains("too small"));
        // 512-byte clusters over 64 TiB would need a 16 GiB L1 table.
        let mut b = v3(MAX_VIRTUAL_SIZE);
        b[20..24].copy_from_slice(&9u32.to_be_bytes());
        b[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(refused(&b, FILE).contains("larger than"));
        let mut b = v3(1 << 20);
        b[20..24].copy_from_slice(&22u32.to_be_bytes());
        assert!(refused(&b, FILE).contains("cluster_bits"));
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        assert!(refused(b"QFI", 3).contains("not a qcow2"));
        let mut b = v3(1 << 20);
        b[100..104].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(refused(&b, FILE).contains("header length"));
        let mut b = v3(1 << 20);
        b[112..116].copy_from_slice(&7u32.to_be_bytes());
        b[116..120].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(refused(&b, FILE).contains("runs past"));
        let mut b = v3(1 << 20);
        b[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        b[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(refused(&b, FILE).contains("backing file;"));
    }
}
