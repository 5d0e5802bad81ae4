//! Writing one output from a feed: a local file, or an object in any store.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use imagebuilder_core::error_chain;
use imagebuilder_core::store::fsio::unique_suffix;
use imagebuilder_core::template::model::OutputFormat;
use tokio::runtime::Handle;

use super::feed::{Feed, FeedItem};
use crate::disk::{
    sha256_file, writer, DiskWriter, FileSink, FormatLayout, HashingSink, OutputSink,
};
use crate::store::{sink_for, upload_file};

/// Where an output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// A local file: written under a temporary name beside it and renamed, holes kept.
    File(PathBuf),
    /// An object store URL; `page_blob` asks for an Azure page blob (what a VHD must be for
    /// Azure to make a disk of it).
    Url {
        /// The URL.
        url: String,
        /// Whether Azure targets are written as page blobs.
        page_blob: bool,
    },
}

impl Destination {
    /// The destination a target's `uri` names: a local path or `file://` URL is a file,
    /// anything else a store URL.
    pub(crate) fn from_uri(uri: &str, page_blob: bool) -> Self {
        if uri.starts_with('/') {
            return Self::File(PathBuf::from(uri));
        }
        if let Some(path) = url::Url::parse(uri)
            .ok()
            .filter(|u| u.scheme() == "file")
            .and_then(|u| u.to_file_path().ok())
        {
            return Self::File(path);
        }
        Self::Url {
            url: uri.to_owned(),
            page_blob,
        }
    }

    /// The URI a run output reports.
    pub(crate) fn uri(&self) -> String {
        match self {
            Self::File(path) => format!("file://{}", path.display()),
            Self::Url { url, .. } => imagebuilder_core::artifacts::redact_uri(url),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// sha256 of the output file.
    pub(crate) sha256: String,
    /// Size of the output file.
    pub(crate) size: u64,
}

/// One output to write from a feed.
pub(crate) struct OutputJob {
    /// The capture's chunks.
    pub(crate) feed: Feed,
    /// Format to write.
    pub(crate) format: OutputFormat,
    /// Virtual size of the capture.
    pub(crate) virtual_size: u64,
    /// Where it goes.
    pub(crate) destination: Destination,
    /// Where a format that cannot stream (qcow2, dynamic VHD) is put together before its
    /// upload.
    pub(crate) spool_dir: PathBuf,
    /// Set when the distribution is abandoned.
    pub(crate) cancel: Arc<AtomicBool>,
    /// Receives the bytes of the virtual disk written so far.
    pub(crate) progress: Box<dyn FnMut(u64) + Send>,
    /// The runtime uploads run on.
    pub(crate) handle: Handle,
}

/// Writes one output; blocking. Nothing is left under the destination's name on failure.
///
/// # Errors
/// A message saying what failed.
pub(crate) fn write_output(job: OutputJob) -> Result<Written, String> {
    match job.destination.clone() {
        Destination::File(path) => write_file(job, &path),
        Destination::Url { url, page_blob } if job.format.sequential() => {
            stream_to_url(job, &url, page_blob)
        }
        Destination::Url { url, .. } => spool_then_upload(job, &url),
    }
}

/// The output's file size when known before writing (what a page blob is created with).
fn file_size(format: OutputFormat, virtual_size: u64) -> Option<u64> {
    match format {
        OutputFormat::Raw => Some(virtual_size),
        OutputFormat::VhdFixed => Some(format.virtual_size(virtual_size) + 512),
        OutputFormat::Qcow2 | OutputFormat::VhdDynamic => None,
    }
}

fn write_file(job: OutputJob, path: &Path) -> Result<Written, String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = dir.join(format!(".{name}.{}.partial", unique_suffix()));
    let result = write_local(job, &partial).and_then(|written| {
        std::fs::rename(&partial, path)
            .map_err(|e| format!("move the output to {}: {e}", path.display()))?;
        Ok(written)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Writes to a local file, hashing as it goes when the format streams, else after.
fn write_local(job: OutputJob, path: &Path) -> Result<Written, String> {
    let sink = FileSink::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    if job.format.sequential() {
        let (sink, digest) = HashingSink::new(sink);
        let size = pump(job, Box::new(sink))?;
        let sha256 = digest
            .get()
            .ok_or("internal error: the output was not hashed")?;
        Ok(Written { sha256, size })
    } else {
        let size = pump(job, Box::new(sink))?;
        let sha256 = sha256_file(path).map_err(|e| error_chain(&e))?;
        Ok(Written { sha256, size })
    }
}

fn stream_to_url(job: OutputJob, url: &str, page_blob: bool) -> Result<Written, String> {
    let len = file_size(job.format, job.virtual_size);
    let sink = sink_for(url, len, page_blob, job.handle.clone()).map_err(|e| error_chain(&e))?;
    let (sink, digest) = HashingSink::new(sink);
    let size = pump(job, Box::new(sink))?;
    let sha256 = digest
        .get()
        .ok_or("internal error: the output was not hashed")?;
    Ok(Written { sha256, size })
}

fn spool_then_upload(job: OutputJob, url: &str) -> Result<Written, String> {
    std::fs::create_dir_all(&job.spool_dir)
        .map_err(|e| format!("create {}: {e}", job.spool_dir.display()))?;
    let spool = job.spool_dir.join(format!("spool.{}", unique_suffix()));
    let handle = job.handle.clone();
    let cancel = job.cancel.clone();
    let result = write_local(job, &spool).and_then(|written| {
        if cancel.load(Ordering::Relaxed) {
            return Err("canceled".to_owned());
        }
        handle
            .block_on(upload_file(&spool, url, |_| {}))
            .map_err(|e| error_chain(&e))?;
        Ok(written)
    });
    let _ = std::fs::remove_file(&spool);
    result
}

/// Feeds every chunk to a writer of the job's format on `sink`; returns the output's size.
fn pump(mut job: OutputJob, sink: Box<dyn OutputSink>) -> Result<u64, String> {
    let mut writer: Box<dyn DiskWriter> =
        writer(job.format, job.virtual_size, sink).map_err(|e| error_chain(&e))?;
    loop {
        if job.cancel.load(Ordering::Relaxed) {
            return Err("canceled".to_owned());
        }
        match job.feed.recv() {
            Ok(FeedItem::Chunk(chunk)) => {
                writer.write_chunk(&chunk).map_err(|e| error_chain(&e))?;
                (job.progress)(chunk.end());
            }
            Ok(FeedItem::End) => break,
            Ok(FeedItem::Failed(message)) => return Err(format!("reading the capture: {message}")),
            Err(_) => return Err("the capture stopped before its end".to_owned()),
        }
    }
    writer.finish().map_err(|e| error_chain(&e))
}
