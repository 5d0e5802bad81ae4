//! Azure page blobs, the blob type Azure makes disks from (`object_store` writes block blobs
//! only).

mod client;
mod signer;
mod target;

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use imagebuilder_core::artifacts::redact_uri;
use reqwest::{Method, StatusCode};
use tokio::runtime::Handle;
use tokio::task::JoinSet;
use url::Url;

use self::client::{header, BlobClient, BlobRequestError};
pub(crate) use self::target::is_azure_url;
use self::target::BlobTarget;
use super::{cleanup, StoreError};
use crate::disk::OutputSink;

/// Page blobs are made of 512-byte pages.
const PAGE: u64 = 512;
/// The largest range one Put Page request writes.
const MAX_PUT: usize = 4 << 20;
/// Put Page requests in flight at once; memory is about `(IN_FLIGHT + 1) * 4 MiB`.
const IN_FLIGHT: usize = 4;
/// How long `finish` waits for the service to copy the blob to its final name.
const COPY_TIMEOUT: Duration = Duration::from_secs(3600);

/// An [`OutputSink`] writing an Azure page blob, for fixed VHDs that Azure makes disks from.
///
/// For `az://CONTAINER/BLOB` (account, key or SAS, endpoint or emulator from the same
/// `AZURE_STORAGE_*` variables as `object_store` reads), for
/// `https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB[?SAS]`, and for path-style URLs
/// under the configured emulator or endpoint. Authorization is the URL's SAS token, else the
/// account key (Shared Key, signed here) or `AZURE_STORAGE_SAS_KEY`. A SAS must allow
/// create, write, read and delete on the container (the blob is staged under another name).
///
/// The blob is created with its final length (a multiple of 512); writes are gathered into
/// page-aligned ranges of up to 4 MiB, and 512-byte pages that are all zeros are not sent:
/// a page blob reads zeros where nothing was written. At most four requests are in flight, so
/// memory stays at about 20 MiB.
///
/// Writes may come in any order, but one that does not continue the previous write must
/// start on a page boundary, and writes must not overlap (requests in flight may land in any
/// order).
///
/// The blob is written as `BLOB.partial-UNIQUE`; [`finish`](OutputSink::finish) copies it
/// to `BLOB` with Copy Blob, waits for the copy to succeed, then deletes the partial blob, so
/// `BLOB` never holds an incomplete upload. A sink dropped unfinished, or whose `finish`
/// fails, deletes the partial blob (best effort). See the [module docs](super) for the
/// blocking rules.
pub struct PageBlobSink {
    handle: Handle,
    client: Arc<BlobClient>,
    /// The staging blob; `None` once it is gone (finished, or deleted).
    partial: Option<Url>,
    /// The URL as given, redacted.
    shown: String,
    /// The blob's length as created.
    len: u64,
    /// Data gathered from `run_start`, at most [`MAX_PUT`] bytes.
    run: Vec<u8>,
    run_start: u64,
    /// The end of the furthest write.
    high: u64,
    in_flight: JoinSet<Result<(), StoreError>>,
    /// Whether a request failed: the blob cannot be completed.
    failed: bool,
    /// Put Page requests started.
    requests: u64,
}

impl std::fmt::Debug for PageBlobSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageBlobSink")
            .field("url", &self.shown)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{:x}{nanos:08x}{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl PageBlobSink {
    /// Creates the staging page blob of `len` bytes (a multiple of 512) for `url`. Blocks on
    /// `handle` until the service has created it.
    ///
    /// # Errors
    /// [`StoreError::Unsupported`] when the URL is not an Azure blob, credentials are missing
    /// or `len` is not a multiple of 512; [`StoreError::Request`] when the service refuses.
    pub fn create(url: &str, len: u64, handle: Handle) -> Result<Self, StoreError> {
        let shown = redact_uri(url);
        let unsupported = |reason: String| StoreError::Unsupported {
            url: shown.clone(),
            reason: reason.replace(url, &shown),
        };
        if !len.is_multiple_of(PAGE) {
            return Err(unsupported(format!(
                "a page blob's length is a multiple of 512 bytes, not {len}"
            )));
        }
        let target = BlobTarget::resolve(url).map_err(unsupported)?;
        let partial = Url::parse(&format!("{}.partial-{}", target.blob, unique()))
            .map_err(|e| unsupported(e.to_string()))?;
        let client = BlobClient::new(target).map_err(|e| unsupported(e.to_string()))?;
        let client = Arc::new(client);
        handle
            .block_on(client.send(
                Method::PUT,
                &partial,
                &[],
                &[
                    ("x-ms-blob-type", "PageBlob".into()),
                    ("x-ms-blob-content-length", len.to_string()),
                ],
                Bytes::new(),
            ))
            .map_err(|e| StoreError::request(format!("failed to create page blob {shown}"), e))?;
        Ok(Self {
            handle,
            client,
            partial: Some(partial),
            shown,
            len,
            run: Vec::with_capacity(MAX_PUT),
            run_start: 0,
            high: 0,
            in_flight: JoinSet::new(),
            failed: false,
            requests: 0,
        })
    }

    /// Put Page requests started so far. Zero pages are not sent, and data is sent once 4 MiB
    /// are gathered or a write jumps elsewhere.
    pub fn page_requests(&self) -> u64 {
        self.requests
    }

    fn invalid(&self, message: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: {message}", self.shown),
        )
    }

    fn partial(&self) -> io::Result<&Url> {
        match (&self.partial, self.failed) {
            (Some(partial), false) => Ok(partial),
            _ => Err(io::Error::other(format!(
                "the upload of page blob {} has failed or finished already",
                self.shown
            ))),
        }
    }

    /// Waits for one request in flight; records a failure.
    fn join_one(&mut self) -> io::Result<()> {
        let Some(joined) = self.handle.block_on(self.in_flight.join_next()) else {
            return Ok(());
        };
        let result = joined
            .map_err(io::Error::other)
            .and_then(|r| r.map_err(io::Error::from));
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Sends the gathered run, padded to whole pages, as Put Page requests for its non-zero
    /// pages.
    fn flush(&mut self) -> io::Result<()> {
        if self.run.is_empty() {
            return Ok(());
        }
        let padded = self.run.len().next_multiple_of(PAGE as usize);
        self.run.resize(padded, 0);
        let data = Bytes::from(std::mem::replace(
            &mut self.run,
            Vec::with_capacity(MAX_PUT),
        ));
        let start = self.run_start;
        self.run_start += padded as u64;
        for range in nonzero_pages(&data) {
            while self.in_flight.len() >= IN_FLIGHT {
                self.join_one()?;
            }
            let partial = self.partial()?.clone();
            let offset = start + range.start as u64;
            let body = data.slice(range);
            let client = self.client.clone();
            let shown = self.shown.clone();
            self.requests += 1;
            self.in_flight.spawn_on(
                async move {
                    let end = offset + body.len() as u64 - 1;
                    client
                        .send(
                            Method::PUT,
                            &partial,
                            &[("comp", "page")],
                            &[
                                ("x-ms-page-write", "update".into()),
                                ("x-ms-range", format!("bytes={offset}-{end}")),
                            ],
                            body,
                        )
                        .await
                        .map(drop)
                        .map_err(|e| {
                            StoreError::request(
                                format!(
                                    "failed to write bytes {offset}-{end} of page blob {shown}"
                                ),
                                e,
                            )
                        })
                },
                &self.handle,
            );
        }
        Ok(())
    }

    /// Sets the blob's length, copies it to its final name, deletes the partial blob.
    async fn complete(
        client: &BlobClient,
        partial: &Url,
        shown: &str,
        resize: Option<u64>,
    ) -> Result<(), StoreError> {
        if let Some(len) = resize {
            client
                .send(
                    Method::PUT,
                    partial,
                    &[("comp", "properties")],
                    &[("x-ms-blob-content-length", len.to_string())],
                    Bytes::new(),
                )
                .await
                .map_err(|e| {
                    StoreError::request(format!("failed to set the length of page blob {shown}"), e)
                })?;
        }
        let target = &client.target().blob;
        let copy_error = |e: BlobRequestError| {
            StoreError::request(
                format!("failed to copy the uploaded page blob to {shown}"),
                e,
            )
        };
        let response = client
            .send(
                Method::PUT,
                target,
                &[],
                &[("x-ms-copy-source", client.authorized_url(partial))],
                Bytes::new(),
            )
            .await
            .map_err(copy_error)?;
        let mut status = header(&response, "x-ms-copy-status").map(str::to_owned);
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        // Within one account the copy is usually done when Copy Blob answers; else poll.
        while status.as_deref() == Some("pending") && started.elapsed() < COPY_TIMEOUT {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            let response = client
                .send(Method::HEAD, target, &[], &[], Bytes::new())
                .await
                .map_err(copy_error)?;
            status = header(&response, "x-ms-copy-status").map(str::to_owned);
        }
        if status.as_deref() != Some("success") {
            // What a failed or unfinished copy left under the final name is not the upload.
            let _ = client
                .send(Method::DELETE, target, &[], &[], Bytes::new())
                .await;
            return Err(copy_error(BlobRequestError::Unexpected(format!(
                "copy status {}",
                status.as_deref().unwrap_or("missing")
            ))));
        }
        delete(client, partial).await.map_err(|e| {
            StoreError::request(
                format!("failed to delete the partial blob of {shown} after copying it"),
                e,
            )
        })
    }
}

/// Deletes `blob`; one already gone is fine.
async fn delete(client: &BlobClient, blob: &Url) -> Result<(), BlobRequestError> {
    match client
        .send(Method::DELETE, blob, &[], &[], Bytes::new())
        .await
    {
        Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(()),
        other => other.map(drop),
    }
}

/// The byte ranges of the maximal runs of 512-byte pages of `data` that are not all zeros.
fn nonzero_pages(data: &[u8]) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for (i, page) in data.chunks(PAGE as usize).enumerate() {
        if page.iter().all(|&b| b == 0) {
            continue;
        }
        let start = i * PAGE as usize;
        let end = start + page.len();
        match ranges.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => ranges.push(start..end),
        }
    }
    ranges
}

impl OutputSink for PageBlobSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.partial()?;
        if data.is_empty() {
            return Ok(());
        }
        let end = offset + data.len() as u64;
        if end > self.len {
            return Err(self.invalid(format!(
                "write of bytes {offset}..{end} past the page blob's length {}",
                self.len
            )));
        }
        let run_end = self.run_start + self.run.len() as u64;
        if offset != run_end || self.run.is_empty() {
            self.flush()?;
            if !offset.is_multiple_of(PAGE) {
                return Err(self.invalid(format!(
                    "write at offset {offset}: a write that does not continue the previous one starts on a 512-byte page"
                )));
            }
            self.run_start = offset;
        }
        let mut data = data;
        while !data.is_empty() {
            let n = data.len().min(MAX_PUT - self.run.len());
            self.run.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.run.len() == MAX_PUT {
                self.flush()?;
            }
        }
        self.high = self.high.max(end);
        Ok(())
    }

    fn finish(mut self: Box<Self>, len: u64) -> io::Result<()> {
        self.partial()?;
        if !len.is_multiple_of(PAGE) || len < self.high {
            return Err(self.invalid(format!(
                "cannot finish a page blob at {len} bytes: it must be a multiple of 512 and hold the {} bytes written",
                self.high
            )));
        }
        self.flush()?;
        while !self.in_flight.is_empty() {
            self.join_one()?;
        }
        let partial = self.partial()?.clone();
        let resize = (len != self.len).then_some(len);
        let result =
            self.handle
                .block_on(Self::complete(&self.client, &partial, &self.shown, resize));
        if result.is_ok() {
            self.partial = None;
        }
        result.map_err(io::Error::from)
    }
}

impl Drop for PageBlobSink {
    fn drop(&mut self) {
        let Some(partial) = self.partial.take() else {
            return;
        };
        let mut in_flight = std::mem::take(&mut self.in_flight);
        let client = self.client.clone();
        cleanup::run(&self.handle, async move {
            in_flight.shutdown().await;
            let _ = delete(&client, &partial).await;
        });
    }
}

/// The byte ranges of the page blob at `url` that hold data (Get Page Ranges), in order.
///
/// # Errors
/// [`StoreError::Unsupported`] as for [`PageBlobSink::create`]; [`StoreError::Request`] when
/// the service refuses or answers something else than a page list.
pub async fn page_ranges(url: &str) -> Result<Vec<Range<u64>>, StoreError> {
    let shown = redact_uri(url);
    let target = BlobTarget::resolve(url).map_err(|reason| StoreError::Unsupported {
        url: shown.clone(),
        reason: reason.replace(url, &shown),
    })?;
    let blob = target.blob.clone();
    let client = BlobClient::new(target).map_err(|e| StoreError::Unsupported {
        url: shown.clone(),
        reason: e.to_string(),
    })?;
    let failed = |e: BlobRequestError| {
        StoreError::request(format!("failed to list the page ranges of {shown}"), e)
    };
    let mut ranges = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut query = vec![("comp", "pagelist")];
        if let Some(marker) = &marker {
            query.push(("marker", marker));
        }
        let response = client
            .send(Method::GET, &blob, &query, &[], Bytes::new())
            .await
            .map_err(failed)?;
        let body = response
            .text()
            .await
            .map_err(|e| failed(BlobRequestError::Transport(e.without_url())))?;
        for range in xml_elements(&body, "PageRange") {
            let number = |tag| {
                xml_elements(range, tag)
                    .next()
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            match (number("Start"), number("End")) {
                (Some(start), Some(end)) => ranges.push(start..end + 1),
                _ => {
                    return Err(failed(BlobRequestError::Unexpected(
                        "a PageRange without Start and End".into(),
                    )))
                }
            }
        }
        marker = xml_elements(&body, "NextMarker")
            .next()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        if marker.is_none() {
            return Ok(ranges);
        }
    }
}

/// The contents of each `<tag>...</tag>` in `xml` (a flat scan: enough for a page list).
fn xml_elements<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let len = rest[start..].find(&close)?;
        let found = &rest[start..start + len];
        rest = &rest[start + len + close.len()..];
        Some(found)
    })
}

#[cfg(test)]
mod tests {
    use super::{nonzero_pages, xml_elements};

    #[test]
    fn zero_pages_are_skipped_and_neighbours_merged() {
        let mut data = vec![0u8; 512 * 6];
        data[0] = 1;
        data[512 + 511] = 1;
        data[512 * 4 + 3] = 1;
        assert_eq!(nonzero_pages(&data), vec![0..1024, 2048..2560]);
        assert!(nonzero_pages(&[0; 4096]).is_empty());
    }

    #[test]
    fn page_list_elements() {
        let xml = "<?xml version=\"1.0\"?><PageList><PageRange><Start>0</Start><End>511</End></PageRange><PageRange><Start>1024</Start><End>2047</End></PageRange><NextMarker /></PageList>";
        let starts: Vec<_> = xml_elements(xml, "Start").collect();
        assert_eq!(starts, ["0", "1024"]);
        assert_eq!(xml_elements(xml, "PageRange").count(), 2);
        assert_eq!(xml_elements(xml, "NextMarker").count(), 0);
    }
}
