//! The dynamic disk header (`cxsparse`) that follows a dynamic VHD's footer copy.

use super::super::file::{be_u32, be_u64};
use super::footer::checksum;

/// Size of the dynamic header.
pub(crate) const HEADER_LEN: usize = 1024;
const COOKIE: &[u8; 8] = b"cxsparse";

/// The fields of a dynamic header we use (no parent: we do not read differencing disks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DynamicHeader {
    /// Byte offset of the BAT.
    pub(crate) table_offset: u64,
    /// Number of BAT entries.
    pub(crate) max_table_entries: u32,
    /// Bytes of data per block.
    pub(crate) block_size: u32,
}

impl DynamicHeader {
    /// The 1024 bytes, with the checksum.
    pub(crate) fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(COOKIE);
        // Data offset: unused, all ones (the spec's text says 32 bits; every tool writes 64).
        b[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        b[16..24].copy_from_slice(&self.table_offset.to_be_bytes());
        b[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        b[28..32].copy_from_slice(&self.max_table_entries.to_be_bytes());
        b[32..36].copy_from_slice(&self.block_size.to_be_bytes());
        let sum = checksum(&b, 36);
        b[36..40].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// Parses a header, checking its cookie and checksum.
    pub(crate) fn parse(b: &[u8; HEADER_LEN]) -> Result<Self, String> {
        if &b[0..8] != COOKIE {
            return Err(
                "no dynamic disk header (cookie \"cxsparse\") where the footer points".into(),
            );
        }
        let stored = be_u32(b, 36);
        let computed = checksum(b, 36);
        if stored != computed {
            return Err(format!(
                "dynamic disk header checksum is {stored:#010x}, should be {computed:#010x}"
            ));
        }
        Ok(Self {
            table_offset: be_u64(b, 16),
            max_table_entries: be_u32(b, 28),
            block_size: be_u32(b, 32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_its_checksum_is_checked() {
        let header = DynamicHeader {
            table_offset: 1536,
            max_table_entries: 5,
            block_size: 2 << 20,
        };
        let bytes = header.to_bytes();
        assert_eq!(&bytes[0..8], b"cxsparse");
        assert_eq!(be_u64(&bytes, 8), u64::MAX);
        assert_eq!(be_u32(&bytes, 24), 0x0001_0000);
        assert_eq!(DynamicHeader::parse(&bytes).unwrap(), header);
        let mut broken = bytes;
        broken[30] ^= 4;
        assert!(DynamicHeader::parse(&broken)
            .unwrap_err()
            .contains("checksum"));
    }
}
