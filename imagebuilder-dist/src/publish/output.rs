//! Writing one output from a feed: a local file, or an object in any store.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use imagebuilder_core::error_chain;
use imagebuilder_core::store::fsio::unique_suffix;
use imagebuilder_core::template::model::OutputFormat;
use tokio::runtime::Handle;

use super::feed::{Feed, FeedItem};
use crate::disk::{
    sha256_file, writer, DiskWriter, FileSink, FormatLayout, HashingSink, OutputSink,
};
use crate::store::{delete_object, sink_for, upload_file};

/// What a writer stopped by its cancel flag reports.
pub(crate) const CANCELED: &str = "canceled";

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

    /// The URI a run output reports (a URL's query, which may hold a SAS, redacted).
    pub(crate) fn uri(&self) -> String {
        match self {
            Self::File(path) => url::Url::from_file_path(path)
                .map_or_else(|()| format!("file://{}", path.display()), String::from),
            Self::Url { url, .. } => imagebuilder_core::artifacts::redact_uri(url),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// sha256 of the output file; empty when its job did not ask for it.
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
    /// Whether to compute the output's sha256.
    pub(crate) digest: bool,
    /// Where a format that cannot stream (qcow2, dynamic VHD) is put together before its
    /// upload.
    pub(crate) spool_dir: PathBuf,
    /// Set when the distribution is abandoned.
    pub(crate) cancel: Arc<AtomicBool>,
    /// Receives the bytes of the virtual disk written so far.
    pub(crate) progress: Box<dyn FnMut(u64) + Send>,
    /// The runtime uploads run on.
    pub(crate) handle: Handle,
    /// Kept alive until the writer is done (a reservation the output depends on).
    pub(crate) _hold: Arc<dyn Any + Send + Sync>,
}

/// A file removed on drop unless kept: no temporary file outlives an error or a panic.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn new(path: PathBuf) -> Self {
        Self(Some(path))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Moves the file to `target`; it is no longer temporary.
    fn persist(mut self, target: &Path) -> std::io::Result<()> {
        let path = self.0.take().unwrap_or_default();
        std::fs::rename(&path, target).inspect_err(|_| {
            let _ = std::fs::remove_file(&path);
        })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Deletes what earlier outputs of a distribution that failed as a whole published; best
/// effort (a leftover replica without a manifest is invisible, and replaced by a rerun).
pub(crate) async fn remove_outputs(destinations: &[Destination]) {
    for destination in destinations {
        match destination {
            Destination::File(path) => {
                let _ = tokio::fs::remove_file(path).await;
            }
            Destination::Url { url, .. } => {
                let _ = delete_object(url).await;
            }
        }
    }
}

/// Writes one output; blocking. Nothing is left under the destination's name on failure.
///
/// # Errors
/// A message saying what failed.
pub(crate) fn write_output(job: OutputJob) -> Result<Written, String> {
    // Held to the very end, past the rename or upload that publishes the output.
    let _hold = job._hold.clone();
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
    let partial = TempFile::new(dir.join(format!(".{name}.{}.partial", unique_suffix())));
    let cancel = job.cancel.clone();
    let written = write_local(job, partial.path())?;
    if cancel.load(Ordering::Relaxed) {
        return Err(CANCELED.to_owned());
    }
    partial
        .persist(path)
        .map_err(|e| format!("move the output to {}: {e}", path.display()))?;
    Ok(written)
}

/// Writes to a local file; a wanted digest of a format that does not stream (its header
/// is written last) is taken by reading the file back.
fn write_local(job: OutputJob, path: &Path) -> Result<Written, String> {
    let sink = FileSink::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    if job.digest && !job.format.sequential() {
        let size = pump(job, Box::new(sink))?;
        let sha256 = sha256_file(path).map_err(|e| error_chain(&e))?;
        return Ok(Written { sha256, size });
    }
    pump_to(job, sink)
}

/// Copies the finished, flushed output `source` to `target` (a hard link when both are on
/// one filesystem, else a flushed copy; under a temporary name, then renamed), unless
/// `cancel` is set first.
///
/// # Errors
/// A message saying what failed.
pub(crate) fn copy_output(source: &Path, target: &Path, cancel: &AtomicBool) -> Result<(), String> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = TempFile::new(dir.join(format!(".{name}.{}.partial", unique_suffix())));
    // Published files are never modified in place, only replaced (renamed over) or deleted,
    // so a replica on the same filesystem can share the source's blocks: a hard link costs
    // nothing and needs no flush of data already flushed. Elsewhere, a copy
    // (copy_file_range underneath: the bytes never pass through this process), flushed.
    if std::fs::hard_link(source, partial.path()).is_err() {
        std::fs::copy(source, partial.path())
            .map_err(|e| format!("copy {} to {}: {e}", source.display(), target.display()))?;
        std::fs::File::open(partial.path())
            .and_then(|f| f.sync_all())
            .map_err(|e| format!("flush {}: {e}", target.display()))?;
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(CANCELED.to_owned());
    }
    partial
        .persist(target)
        .map_err(|e| format!("move the output to {}: {e}", target.display()))?;
    // Make the new name durable before a manifest lists it.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("flush {}: {e}", dir.display()))
}

fn stream_to_url(job: OutputJob, url: &str, page_blob: bool) -> Result<Written, String> {
    let len = file_size(job.format, job.virtual_size);
    let sink = sink_for(url, len, page_blob, job.handle.clone()).map_err(|e| error_chain(&e))?;
    pump_to(job, sink)
}

/// [`pump`] to `sink`, through a [`HashingSink`] when the job wants the output's sha256
/// (callers ask that only of formats written in order).
fn pump_to(job: OutputJob, sink: impl OutputSink + 'static) -> Result<Written, String> {
    if !job.digest {
        let size = pump(job, Box::new(sink))?;
        return Ok(Written {
            sha256: String::new(),
            size,
        });
    }
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
    let spool = TempFile::new(job.spool_dir.join(format!("spool.{}", unique_suffix())));
    let (handle, cancel) = (job.handle.clone(), job.cancel.clone());
    let written = write_local(job, spool.path())?;
    handle.block_on(async {
        tokio::select! {
            uploaded = upload_file(spool.path(), url, |_| {}) => uploaded.map_err(|e| error_chain(&e)),
            () = canceled(&cancel) => Err(CANCELED.to_owned()),
        }
    })?;
    Ok(written)
}

/// Resolves once `flag` is set (dropping the upload it races aborts it).
async fn canceled(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Feeds every chunk to a writer of the job's format on `sink`; returns the output's size.
fn pump(mut job: OutputJob, sink: Box<dyn OutputSink>) -> Result<u64, String> {
    let mut writer: Box<dyn DiskWriter> =
        writer(job.format, job.virtual_size, sink).map_err(|e| error_chain(&e))?;
    loop {
        if job.cancel.load(Ordering::Relaxed) {
            return Err(CANCELED.to_owned());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("copy-output-{name}-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_copy_is_the_same_bytes_under_the_new_name_only() {
        let dir = scratch("ok");
        let source = dir.join("first.qcow2");
        std::fs::write(&source, b"replica bytes").unwrap();
        let target = dir.join("west").join("replica.qcow2");
        copy_output(&source, &target, &AtomicBool::new(false)).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"replica bytes");
        assert_eq!(names(&dir.join("west")), ["replica.qcow2"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_replica_on_the_same_filesystem_shares_blocks_and_survives_its_source_being_replaced() {
        use std::os::unix::fs::MetadataExt;
        let dir = scratch("link");
        let source = dir.join("first.qcow2");
        std::fs::write(&source, b"version one").unwrap();
        let target = dir.join("west").join("replica.qcow2");
        copy_output(&source, &target, &AtomicBool::new(false)).unwrap();
        let (a, b) = (
            std::fs::metadata(&source).unwrap(),
            std::fs::metadata(&target).unwrap(),
        );
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "a hard link");
        // Outputs are replaced by renaming a new file over them, never written in place.
        let next = dir.join("next");
        std::fs::write(&next, b"version two").unwrap();
        std::fs::rename(&next, &source).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"version one");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_replica_on_another_filesystem_is_a_copy() {
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            eprintln!("skipped: no /dev/shm for a second filesystem");
            return;
        }
        let dir = scratch("cross");
        let source = dir.join("first.qcow2");
        std::fs::write(&source, b"replica bytes").unwrap();
        let other = shm.join(format!("copy-output-cross-{}", unique_suffix()));
        let target = other.join("replica.qcow2");
        copy_output(&source, &target, &AtomicBool::new(false)).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"replica bytes");
        assert_eq!(names(&other), ["replica.qcow2"]);
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(other);
    }

    #[test]
    fn a_canceled_copy_leaves_nothing() {
        let dir = scratch("cancel");
        let source = dir.join("first.qcow2");
        std::fs::write(&source, b"replica bytes").unwrap();
        let target = dir.join("west").join("replica.qcow2");
        let err = copy_output(&source, &target, &AtomicBool::new(true)).unwrap_err();
        assert_eq!(err, CANCELED);
        assert!(names(&dir.join("west")).is_empty());
        let err = copy_output(&dir.join("missing"), &target, &AtomicBool::new(false)).unwrap_err();
        assert!(err.contains("missing"), "{err}");
        assert!(names(&dir.join("west")).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
