//! The VHD reader (fixed and dynamic) on any file, as for qcow2.
#![no_main]

mod disk_file;

use imagebuilder_core::template::model::DiskFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    disk_file::read_all(data, DiskFormat::Vhd);
});
