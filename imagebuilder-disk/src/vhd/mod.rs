//! VHD (Microsoft Virtual Hard Disk): reading fixed and dynamic images, writing them.
//!
//! A fixed VHD is the raw disk plus a 512-byte footer. A dynamic one starts with a copy of the
//! footer, a dynamic header (`cxsparse`) and a block allocation table (BAT), then the allocated
//! blocks, each a sector bitmap and the block's data, and ends with the footer.

mod dynamic;
mod fixed;
mod footer;
mod header;
mod reader;

pub(crate) use dynamic::DynamicVhdWriter;
pub(crate) use dynamic::MAX_SIZE as MAX_DYNAMIC_SIZE;
pub(crate) use fixed::FixedVhdWriter;
pub(crate) use reader::open;
