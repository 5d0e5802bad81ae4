//! Shared by the disk reader targets: the input as a file, read to the end.

use std::io::Write;

use imagebuilder_core::template::model::DiskFormat;
use imagebuilder_dist::disk::{open_reader, ChunkData};

/// Chunks read at most: enough to cross several tables, bounded so that a huge sparse
/// virtual disk does not make one input take minutes.
const MAX_CHUNKS: usize = 4096;

/// Writes `data` to a temporary file and reads it as `format`, checking the reader's
/// contract on whatever it yields.
pub fn read_all(data: &[u8], format: DiskFormat) {
    let path = std::env::temp_dir().join(format!("ib-fuzz-{}.img", std::process::id()));
    let mut file = std::fs::File::create(&path).expect("a temporary file");
    file.write_all(data).expect("write the input");
    drop(file);
    if let Ok(mut reader) = open_reader(&path, format) {
        let size = reader.virtual_size();
        let mut next = 0u64;
        for _ in 0..MAX_CHUNKS {
            match reader.next_chunk() {
                Ok(Some(chunk)) => {
                    assert_eq!(chunk.offset, next, "chunks are contiguous");
                    if let ChunkData::Data(bytes) = &chunk.data {
                        assert!(bytes.len() <= imagebuilder_dist::disk::MAX_CHUNK);
                    }
                    next = chunk.end();
                    assert!(next <= size, "no chunk past the virtual size");
                }
                Ok(None) => {
                    assert_eq!(next, size, "the chunks cover the disk");
                    break;
                }
                Err(_) => break,
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}
