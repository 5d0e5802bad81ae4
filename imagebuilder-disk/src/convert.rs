//! File-to-file conversion, published atomically; the output's sha256 on request.

use std::path::{Path, PathBuf};

use imagebuilder_core::template::model::DiskFormat;
use sha2::{Digest, Sha256};

use super::raw::RawReader;
use super::sink::hash_zeros;
use super::{
    open_reader, writer, ChunkData, DiskError, DiskReader, FileSink, FormatLayout, OutputFormat,
};

/// What [`convert`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The output's virtual size (the input's, rounded as [`OutputFormat::virtual_size`] says).
    pub virtual_size: u64,
    /// The output file's size in bytes.
    pub size: u64,
}

/// Converts the image at `input` (of `input_format`) to `format` at `output`, calling
/// `progress(done, total)` with bytes of the virtual disk. Blocking.
///
/// The output is written beside `output` under a temporary name and renamed at the end, so a
/// failure leaves nothing under `output` and never touches a file already there. No digest
/// is computed: hashing every byte (the zeros of a fixed VHD included) costs several times
/// the conversion itself, so callers who want one ask [`sha256_file`] afterwards.
///
/// # Errors
/// [`DiskError`] when the input cannot be read or is not a valid image, or the output cannot
/// be written.
pub fn convert(
    input: &Path,
    input_format: DiskFormat,
    output: &Path,
    format: OutputFormat,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Converted, DiskError> {
    let mut reader = open_reader(input, input_format)?;
    let partial = partial_path(output)?;
    let result = write(reader.as_mut(), &partial, format, progress);
    let result = result.and_then(|converted| {
        std::fs::rename(&partial, output).map_err(|e| {
            DiskError::io(
                format!("rename {} to {}", partial.display(), output.display()),
                e,
            )
        })?;
        // Make the rename durable. A failure here is not reported: the output is complete
        // and already under its name, and an error would claim it was not written.
        if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(converted)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// `dir/.name.partial`, beside `output` so the rename stays on one filesystem.
fn partial_path(output: &Path) -> Result<PathBuf, DiskError> {
    let name = output.file_name().ok_or_else(|| {
        DiskError::io(
            format!("choose a temporary name beside {}", output.display()),
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the output has no file name",
            ),
        )
    })?;
    let mut partial = std::ffi::OsString::from(".");
    partial.push(name);
    partial.push(".partial");
    Ok(output.with_file_name(partial))
}

fn write(
    reader: &mut dyn DiskReader,
    path: &Path,
    format: OutputFormat,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Converted, DiskError> {
    let total = reader.virtual_size();
    let file = FileSink::create(path)
        .map_err(|e| DiskError::io(format!("create {}", path.display()), e))?;
    let mut writer = writer(format, total, Box::new(file))?;
    progress(0, total);
    while let Some(chunk) = reader.next_chunk()? {
        writer.write_chunk(&chunk)?;
        progress(chunk.end(), total);
    }
    let size = writer.finish()?;
    Ok(Converted {
        virtual_size: format.virtual_size(total),
        size,
    })
}

/// The lowercase hex sha256 of a file, its holes hashed as zeros without being read.
///
/// # Errors
/// [`DiskError::Io`] when the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String, DiskError> {
    let mut reader = RawReader::open(path)?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = reader.next_chunk()? {
        match &chunk.data {
            ChunkData::Data(bytes) => hasher.update(bytes),
            ChunkData::Zero(len) => hash_zeros(&mut hasher, *len),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}
