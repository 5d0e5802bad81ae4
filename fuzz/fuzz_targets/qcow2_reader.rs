//! The qcow2 reader on any file: it reads the whole virtual disk or refuses with an error,
//! never panics, and never yields more than the header's virtual size.
#![no_main]

mod disk_file;

use imagebuilder_core::template::model::DiskFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    disk_file::read_all(data, DiskFormat::Qcow2);
});
