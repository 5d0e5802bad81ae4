//! The VHD footer (the last 512 bytes of every VHD), its CHS geometry and checksum.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::super::file::{be_u16, be_u32, be_u64};

/// Size of the footer.
pub(crate) const FOOTER_LEN: usize = 512;
/// `disk type` of a fixed VHD.
pub(crate) const FIXED: u32 = 2;
/// `disk type` of a dynamic VHD.
pub(crate) const DYNAMIC: u32 = 3;

const COOKIE: &[u8; 8] = b"conectix";
/// Seconds from the Unix epoch to the VHD epoch, 2000-01-01 00:00:00 UTC.
const VHD_EPOCH: u64 = 946_684_800;
/// The largest geometry the VHD specification allows: 65535 cylinders, 16 heads, 255 sectors.
pub(crate) const MAX_GEOMETRY_SECTORS: u64 = 65535 * 16 * 255;

/// Cylinders, heads and sectors per track, as the footer stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) cylinders: u16,
    pub(crate) heads: u8,
    pub(crate) sectors: u8,
}

impl Geometry {
    /// The geometry for a disk of `size` bytes, by the algorithm of the VHD specification
    /// (appendix "CHS calculation"); it may cover a little less than the disk, never more.
    pub(crate) fn for_size(size: u64) -> Self {
        let total = (size / 512).min(MAX_GEOMETRY_SECTORS);
        let (sectors, heads, cylinder_heads) = if total >= 65535 * 16 * 63 {
            (255, 16, total / 255)
        } else {
            let mut sectors = 17;
            let mut cylinder_heads = total / sectors;
            let mut heads = cylinder_heads.div_ceil(1024).max(4);
            if cylinder_heads >= heads * 1024 || heads > 16 {
                sectors = 31;
                heads = 16;
                cylinder_heads = total / sectors;
            }
            if cylinder_heads >= heads * 1024 {
                sectors = 63;
                heads = 16;
                cylinder_heads = total / sectors;
            }
            (sectors, heads, cylinder_heads)
        };
        // Each value fits its field: the cap on `total` bounds the cylinders to 65535.
        Self {
            cylinders: (cylinder_heads / heads) as u16,
            heads: heads as u8,
            sectors: sectors as u8,
        }
    }

    /// The number of sectors the geometry covers.
    pub(crate) fn sectors(self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors)
    }
}

/// The fields of a VHD footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) data_offset: u64,
    pub(crate) timestamp: u32,
    pub(crate) creator_app: [u8; 4],
    pub(crate) creator_version: u32,
    pub(crate) creator_os: [u8; 4],
    pub(crate) original_size: u64,
    pub(crate) current_size: u64,
    pub(crate) geometry: Geometry,
    pub(crate) disk_type: u32,
    pub(crate) unique_id: [u8; 16],
}

impl Footer {
    /// The footer we write for a disk of `size` bytes (a multiple of 512).
    ///
    /// Creator "win " (Hyper-V): readers choose between the CHS geometry and `current_size`
    /// by the creator application, and this is the one every reader (Hyper-V, Azure, qemu,
    /// VirtualBox) takes to mean "`current_size` is exact", which Azure needs. The unique id
    /// is derived from the time, the process id, a counter and the size through sha256: it
    /// needs to be unique, not secret.
    pub(crate) fn ours(disk_type: u32, size: u64, data_offset: u64) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            data_offset,
            timestamp: now.as_secs().saturating_sub(VHD_EPOCH) as u32,
            creator_app: *b"win ",
            creator_version: 0x000a_0000,
            creator_os: *b"Wi2k",
            original_size: size,
            current_size: size,
            geometry: Geometry::for_size(size),
            disk_type,
            unique_id: unique_id(now.as_nanos(), size),
        }
    }

    /// The 512 bytes, with the checksum.
    pub(crate) fn to_bytes(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        b[0..8].copy_from_slice(COOKIE);
        b[8..12].copy_from_slice(&2u32.to_be_bytes()); // features: "reserved", always set
        b[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes()); // format version 1.0
        b[16..24].copy_from_slice(&self.data_offset.to_be_bytes());
        b[24..28].copy_from_slice(&self.timestamp.to_be_bytes());
        b[28..32].copy_from_slice(&self.creator_app);
        b[32..36].copy_from_slice(&self.creator_version.to_be_bytes());
        b[36..40].copy_from_slice(&self.creator_os);
        b[40..48].copy_from_slice(&self.original_size.to_be_bytes());
        b[48..56].copy_from_slice(&self.current_size.to_be_bytes());
        b[56..58].copy_from_slice(&self.geometry.cylinders.to_be_bytes());
        b[58] = self.geometry.heads;
        b[59] = self.geometry.sectors;
        b[60..64].copy_from_slice(&self.disk_type.to_be_bytes());
        b[68..84].copy_from_slice(&self.unique_id);
        // Saved state (84) is 0: no saved state.
        let sum = checksum(&b, 64);
        b[64..68].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// Parses a footer, checking its cookie and checksum.
    pub(crate) fn parse(b: &[u8; FOOTER_LEN]) -> Result<Self, String> {
        if &b[0..8] != COOKIE {
            return Err("no VHD footer (cookie \"conectix\") in the last 512 bytes".into());
        }
        let stored = be_u32(b, 64);
        let computed = checksum(b, 64);
        if stored != computed {
            return Err(format!(
                "VHD footer checksum is {stored:#010x}, should be {computed:#010x}"
            ));
        }
        let mut unique_id = [0; 16];
        unique_id.copy_from_slice(&b[68..84]);
        Ok(Self {
            data_offset: be_u64(b, 16),
            timestamp: be_u32(b, 24),
            creator_app: [b[28], b[29], b[30], b[31]],
            creator_version: be_u32(b, 32),
            creator_os: [b[36], b[37], b[38], b[39]],
            original_size: be_u64(b, 40),
            current_size: be_u64(b, 48),
            geometry: Geometry {
                cylinders: be_u16(b, 56),
                heads: b[58],
                sectors: b[59],
            },
            disk_type: be_u32(b, 60),
            unique_id,
        })
    }

    /// The virtual size as qemu sees it: `current_size` when the creator is one known to
    /// mean it exactly or the geometry is the largest, else what the CHS geometry covers
    /// (Virtual PC's and old qemu's images, whose `current_size` can be larger).
    pub(crate) fn virtual_size(&self) -> u64 {
        const EXACT: [&[u8; 4]; 5] = [b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0"];
        let chs = self.geometry.sectors();
        if EXACT.contains(&&self.creator_app) || chs == MAX_GEOMETRY_SECTORS {
            self.current_size
        } else {
            chs * 512
        }
    }
}

/// The one's complement of the sum of all bytes of `bytes` but the 4 at `field`.
pub(crate) fn checksum(bytes: &[u8], field: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |sum, (_, &b)| sum.wrapping_add(u32::from(b)));
    !sum
}

fn unique_id(nanos: u128, size: u64) -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = Sha256::new();
    hasher.update(nanos.to_be_bytes());
    hasher.update(std::process::id().to_be_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    hasher.update(size.to_be_bytes());
    let mut id = [0; 16];
    id.copy_from_slice(&hasher.finalize()[..16]);
    // Mark it a random (version 4, RFC 4122 variant) UUID, as tools that show it expect.
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_follows_the_specification() {
        // Small disks use 17 sectors per track and at least 4 heads.
        assert_eq!(
            Geometry::for_size(10 << 20),
            Geometry {
                cylinders: 301,
                heads: 4,
                sectors: 17
            }
        );
        // 1 GiB: 17 sectors would need more than 16 heads, so 63 sectors.
        assert_eq!(
            Geometry::for_size(1 << 30),
            Geometry {
                cylinders: 2080,
                heads: 16,
                sectors: 63
            }
        );
        // Past 65535*16*63 sectors: 255 sectors, 16 heads.
        assert_eq!(
            Geometry::for_size(127 << 30),
            Geometry {
                cylinders: 65278,
                heads: 16,
                sectors: 255
            }
        );
        // Larger disks saturate at the maximum.
        let max = Geometry::for_size(4 << 40);
        assert_eq!(
            max,
            Geometry {
                cylinders: 65535,
                heads: 16,
                sectors: 255
            }
        );
        assert_eq!(max.sectors(), MAX_GEOMETRY_SECTORS);
    }

    #[test]
    fn geometry_never_covers_more_than_the_disk() {
        for mib in [1u64, 3, 17, 100, 500, 1000, 4095, 8192, 30_000, 130_000] {
            let size = mib << 20;
            let g = Geometry::for_size(size);
            assert!(g.sectors() * 512 <= size, "{mib} MiB: {g:?}");
            assert!(g.sectors() * 512 > size - size / 50, "{mib} MiB: {g:?}");
        }
    }

    #[test]
    fn a_footer_round_trips_and_its_checksum_is_checked() {
        let footer = Footer::ours(FIXED, 30 << 20, u64::MAX);
        let bytes = footer.to_bytes();
        assert_eq!(&bytes[0..8], b"conectix");
        assert_eq!(be_u32(&bytes, 8), 2);
        assert_eq!(be_u32(&bytes, 12), 0x0001_0000);
        assert_eq!(be_u64(&bytes, 16), u64::MAX);
        assert_eq!(be_u32(&bytes, 60), 2);
        assert_eq!(bytes[84], 0);
        assert_eq!(Footer::parse(&bytes).unwrap(), footer);
        assert_eq!(footer.virtual_size(), 30 << 20);

        let mut broken = bytes;
        broken[50] ^= 1;
        assert!(Footer::parse(&broken).unwrap_err().contains("checksum"));
        let mut no_cookie = bytes;
        no_cookie[0] = b'C';
        assert!(Footer::parse(&no_cookie).unwrap_err().contains("conectix"));
    }

    #[test]
    fn the_checksum_is_the_complement_of_the_byte_sum() {
        let mut bytes = [0u8; 16];
        bytes[0] = 1;
        bytes[1] = 2;
        bytes[4] = 0xff; // in the checksum field: not counted
        assert_eq!(checksum(&bytes, 4), !3u32);
    }

    #[test]
    fn unique_ids_differ() {
        let a = Footer::ours(FIXED, 1 << 20, u64::MAX);
        let b = Footer::ours(FIXED, 1 << 20, u64::MAX);
        assert_ne!(a.unique_id, b.unique_id);
        assert_eq!(a.unique_id[6] >> 4, 4);
    }

    #[test]
    fn qemu_reads_chs_sizes_for_creators_it_does_not_trust() {
        let mut footer = Footer::ours(DYNAMIC, 10 << 20, 512);
        footer.creator_app = *b"qemu";
        assert_eq!(footer.virtual_size(), 301 * 4 * 17 * 512);
    }
}
