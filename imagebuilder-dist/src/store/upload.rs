//! Uploads through `object_store` multipart uploads.

use std::io;
use std::path::Path;

use bytes::Bytes;
use imagebuilder_core::artifacts::redact_uri;
use object_store::{ObjectStoreExt, WriteMultipart};
use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;

use super::{cleanup, open_store, redact, StoreError};
use crate::disk::OutputSink;

/// Parts are at least this large (S3 wants 5 MiB but for the last part).
const MIN_PART: u64 = 16 << 20;
/// Parts an upload may use: S3 allows 10 000, the rest is margin for a low length hint.
const MAX_PARTS: u64 = 9_000;
/// Parts uploading at once; memory is about `(IN_FLIGHT + 1) * part size`.
const IN_FLIGHT: usize = 2;
/// Gaps are filled from this buffer, shared, never allocated per gap.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// The part size for an object of about `len_hint` bytes: 16 MiB, or whole MiBs large enough
/// that the object fits in [`MAX_PARTS`] parts. Without a hint, objects up to about 140 GiB
/// fit.
fn part_size(len_hint: Option<u64>) -> usize {
    let needed = len_hint.map_or(0, |len| len.div_ceil(MAX_PARTS));
    let whole_mib = needed.div_ceil(1 << 20) << 20;
    usize::try_from(whole_mib.max(MIN_PART)).unwrap_or(usize::MAX)
}

/// An [`OutputSink`] uploading one object with a multipart upload (`file://`, `memory://`,
/// `s3://`, `gs://`, `az://` block blobs).
///
/// Writes must come at increasing offsets; gaps between them (and up to the length given to
/// [`finish`](OutputSink::finish)) are uploaded as zeros. Memory stays at a few parts
/// (16 MiB each, more for outputs over about 140 GiB) whatever the output's size.
///
/// The object appears only when `finish` completes the upload (for `file://`, by renaming a
/// temporary file). A failed write aborts the upload, and so does dropping the sink without
/// finishing it, so nothing is left behind but what the store keeps of an aborted upload.
/// See the [module docs](super) for the blocking rules.
pub struct UploadSink {
    handle: Handle,
    /// `None` once finished or aborted.
    upload: Option<WriteMultipart>,
    /// Bytes handed to the upload so far.
    written: u64,
    /// The object's URL, redacted.
    shown: String,
    /// Secrets to keep out of messages: the URL's query values.
    url: String,
}

impl std::fmt::Debug for UploadSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadSink")
            .field("url", &self.shown)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl UploadSink {
    /// Starts a multipart upload to `url` for an object of about `len_hint` bytes, which sizes
    /// the parts. Blocks on `handle` until the store has started the upload.
    ///
    /// # Errors
    /// [`StoreError::Unsupported`] when the URL names no store of this build;
    /// [`StoreError::Request`] when the store refuses to start the upload.
    pub fn create(url: &str, len_hint: Option<u64>, handle: Handle) -> Result<Self, StoreError> {
        let (store, path) = open_store(url)?;
        let shown = redact_uri(url);
        let upload = handle.block_on(store.put_multipart(&path)).map_err(|e| {
            StoreError::request(
                format!("failed to start the upload of {shown}"),
                redact::source(e, url),
            )
        })?;
        Ok(Self {
            handle,
            upload: Some(WriteMultipart::new_with_chunk_size(
                upload,
                part_size(len_hint),
            )),
            written: 0,
            shown,
            url: url.to_owned(),
        })
    }

    fn failed(&mut self, what: String, error: object_store::Error) -> io::Error {
        if let Some(upload) = self.upload.take() {
            let _ = self.handle.block_on(upload.abort());
        }
        StoreError::request(what, redact::source(error, &self.url)).into()
    }

    fn gone(&self) -> io::Error {
        io::Error::other(format!(
            "the upload of {} has failed or finished already",
            self.shown
        ))
    }

    /// Hands `bytes` to the upload, then waits until at most [`IN_FLIGHT`] parts upload.
    fn put(&mut self, bytes: Bytes) -> io::Result<()> {
        let len = bytes.len() as u64;
        let handle = self.handle.clone();
        let Some(upload) = self.upload.as_mut() else {
            return Err(self.gone());
        };
        {
            // Full parts are spawned with `tokio::spawn`: they need the runtime's context.
            let _runtime = handle.enter();
            upload.put(bytes);
        }
        let waited = handle.block_on(upload.wait_for_capacity(IN_FLIGHT));
        self.written += len;
        waited.map_err(|e| {
            let what = format!("failed to upload a part of {}", self.shown);
            self.failed(what, e)
        })
    }

    /// Uploads zeros up to `offset`.
    fn fill_to(&mut self, offset: u64) -> io::Result<()> {
        while self.written < offset {
            let n = (offset - self.written).min(ZEROS.len() as u64) as usize;
            self.put(Bytes::from_static(&ZEROS[..n]))?;
        }
        Ok(())
    }
}

impl OutputSink for UploadSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if offset < self.written {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: write at offset {offset} after {} bytes; an upload is written in order",
                    self.shown, self.written
                ),
            ));
        }
        self.fill_to(offset)?;
        self.put(Bytes::copy_from_slice(data))
    }

    fn finish(mut self: Box<Self>, len: u64) -> io::Result<()> {
        if len < self.written {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: finished at {len} bytes after {} were written",
                    self.shown, self.written
                ),
            ));
        }
        self.fill_to(len)?;
        let upload = self.upload.take().ok_or_else(|| self.gone())?;
        // `WriteMultipart::finish` aborts the upload itself when completing fails.
        self.handle
            .block_on(upload.finish())
            .map(drop)
            .map_err(|e| {
                StoreError::request(
                    format!("failed to complete the upload of {}", self.shown),
                    redact::source(e, &self.url),
                )
                .into()
            })
    }
}

impl Drop for UploadSink {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            cleanup::run(&self.handle, async move {
                let _ = upload.abort().await;
            });
        }
    }
}

/// Uploads the finished local file at `path` to `url`, calling `progress` with the bytes
/// sent so far after each piece; returns the file's size. The object appears only once the
/// upload completes.
///
/// # Errors
/// [`StoreError::Unsupported`] when the URL names no store of this build;
/// [`StoreError::Request`] when the file cannot be read or the store fails. The upload is
/// aborted then.
///
/// # Cancellation
/// Dropping the future aborts the upload in a task on the current runtime.
pub async fn upload_file(
    path: &Path,
    url: &str,
    mut progress: impl FnMut(u64) + Send,
) -> Result<u64, StoreError> {
    let (store, object) = open_store(url)?;
    let shown = redact_uri(url);
    let read_error = |e: io::Error| {
        StoreError::request(format!("failed to read {} for {shown}", path.display()), e)
    };
    let upload_error = |e: object_store::Error| {
        StoreError::request(
            format!("failed to upload {} to {shown}", path.display()),
            redact::source(e, url),
        )
    };
    let mut file = tokio::fs::File::open(path).await.map_err(read_error)?;
    let len = file.metadata().await.map_err(read_error)?.len();
    let upload = store.put_multipart(&object).await.map_err(upload_error)?;
    let mut guard = AbortOnDrop(Some(WriteMultipart::new_with_chunk_size(
        upload,
        part_size(Some(len)),
    )));
    let writer = guard.0.as_mut().expect("set above");
    let mut buffer = vec![0u8; 1 << 20];
    let mut sent = 0u64;
    loop {
        if let Err(e) = writer.wait_for_capacity(IN_FLIGHT).await {
            guard.abort().await;
            return Err(upload_error(e));
        }
        let n = match file.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                guard.abort().await;
                return Err(read_error(e));
            }
        };
        writer.write(&buffer[..n]);
        sent += n as u64;
        progress(sent);
    }
    let writer = guard.0.take().expect("set above");
    writer.finish().await.map_err(upload_error)?;
    Ok(sent)
}

/// Aborts a multipart upload that is dropped unfinished (a cancelled [`upload_file`]).
struct AbortOnDrop(Option<WriteMultipart>);

impl AbortOnDrop {
    async fn abort(&mut self) {
        if let Some(upload) = self.0.take() {
            let _ = upload.abort().await;
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let (Some(upload), Ok(handle)) = (self.0.take(), Handle::try_current()) {
            handle.spawn(async move {
                let _ = upload.abort().await;
            });
        }
    }
}
