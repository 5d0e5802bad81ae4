//! Publishing machinery every distributor shares: one read of the capture fanned out to many
//! outputs, each written to a file or an object store on a blocking thread.

mod feed;
mod output;

use std::any::Any;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use imagebuilder_core::distribute::{CapturedImage, DistributeContext};
use imagebuilder_core::template::model::OutputFormat;

pub(crate) use feed::{Feed, SharedCapture, Ticket};
pub(crate) use output::{remove_outputs, Destination, Written, CANCELED};

use output::{copy_output, write_output, OutputJob};

/// How often progress is reported while outputs are written.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// One output a distributor asks for.
pub(crate) struct Output {
    /// The capture's chunks, from the distributor's ticket.
    pub(crate) feed: Feed,
    /// Format to write.
    pub(crate) format: OutputFormat,
    /// Where it goes.
    pub(crate) destination: Destination,
    /// Whether to compute the output's sha256 (galleries and managed images record it;
    /// other targets only when asked).
    pub(crate) digest: bool,
}

/// Sets the flag when dropped: a dropped distribution stops its blocking writers.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Writes `outputs` of `image` concurrently, reporting progress as the slowest one's, and
/// returns each one's result in order. The first failure stops the others (they report
/// "canceled"). `hold` (a reservation, say) is kept alive by every writer: dropping the
/// future stops the writers, which remove what they wrote, and only then is `hold` released.
pub(crate) async fn write_all(
    outputs: Vec<Output>,
    image: &CapturedImage,
    run_output_name: &str,
    cx: &DistributeContext<'_>,
    hold: Arc<dyn Any + Send + Sync>,
) -> Vec<Result<Written, String>> {
    let cancel = Arc::new(AtomicBool::new(false));
    let _stop = CancelOnDrop(cancel.clone());
    let handle = tokio::runtime::Handle::current();
    let counters: Vec<Arc<AtomicU64>> = outputs.iter().map(|_| Arc::default()).collect();
    let mut tasks: FuturesUnordered<_> = outputs
        .into_iter()
        .zip(&counters)
        .enumerate()
        .map(|(index, (output, counter))| {
            let counter = counter.clone();
            let job = OutputJob {
                feed: output.feed,
                format: output.format,
                virtual_size: image.virtual_size,
                destination: output.destination,
                digest: output.digest,
                spool_dir: cx.staging_dir.join("spool"),
                cancel: cancel.clone(),
                progress: Box::new(move |done| counter.store(done, Ordering::Relaxed)),
                handle: handle.clone(),
                _hold: hold.clone(),
            };
            let task = tokio::task::spawn_blocking(move || write_output(job));
            async move { (index, task.await) }
        })
        .collect();
    drop(hold);
    let total = image.virtual_size;
    let mut results: Vec<Option<Result<Written, String>>> = counters.iter().map(|_| None).collect();
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            next = tasks.next() => {
                let Some((index, joined)) = next else { break };
                let result = joined.unwrap_or_else(|e| Err(format!("the writer stopped: {e}")));
                if result.is_err() {
                    cancel.store(true, Ordering::Relaxed);
                }
                results[index] = Some(result);
            }
            _ = ticker.tick() => {
                let done = counters.iter().map(|c| c.load(Ordering::Relaxed)).min().unwrap_or(0);
                cx.progress.bytes(run_output_name, done, total);
            }
        }
    }
    let results: Vec<Result<Written, String>> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("internal error: a writer did not report".into())))
        .collect();
    if results.iter().all(Result::is_ok) {
        cx.progress.bytes(run_output_name, total, total);
    }
    results
}

/// Writes `output` (a local file) once, then copies the finished file to each of `copies`,
/// returning one result per destination, `output`'s first.
///
/// For replicas that would come out byte for byte the same (a gallery version's qcow2 in
/// every region): the disk is encoded and hashed once instead of once per region, and each
/// further replica costs one in-kernel file copy. Each copy is made under a temporary name
/// beside its destination, flushed, and renamed, as [`write_all`] does; a failed copy fails
/// only its own result. `hold` is kept alive until the last copy is done.
pub(crate) async fn write_copies(
    output: Output,
    copies: Vec<PathBuf>,
    image: &CapturedImage,
    run_output_name: &str,
    cx: &DistributeContext<'_>,
    hold: Arc<dyn Any + Send + Sync>,
) -> Vec<Result<Written, String>> {
    let Destination::File(source) = output.destination.clone() else {
        let message = "internal error: only a local file can be copied".to_owned();
        return (0..=copies.len()).map(|_| Err(message.clone())).collect();
    };
    let mut results = write_all(vec![output], image, run_output_name, cx, hold.clone()).await;
    let written = match results.remove(0) {
        Ok(written) => written,
        Err(message) => {
            let mut all = vec![Err(message)];
            all.extend(copies.iter().map(|_| Err(CANCELED.to_owned())));
            return all;
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let _stop = CancelOnDrop(cancel.clone());
    let tasks = copies.into_iter().map(|target| {
        let (source, cancel, hold) = (source.clone(), cancel.clone(), hold.clone());
        let task = tokio::task::spawn_blocking(move || {
            let _hold = hold;
            copy_output(&source, &target, &cancel)
        });
        async move {
            task.await
                .unwrap_or_else(|e| Err(format!("the copy stopped: {e}")))
        }
    });
    let mut all = vec![Ok(written.clone())];
    for copied in futures::future::join_all(tasks).await {
        all.push(copied.map(|()| written.clone()));
    }
    all
}

/// [`write_all`] for a distributor with one output.
pub(crate) async fn write_one(
    output: Output,
    image: &CapturedImage,
    run_output_name: &str,
    cx: &DistributeContext<'_>,
) -> Result<Written, String> {
    let mut results = write_all(vec![output], image, run_output_name, cx, Arc::new(())).await;
    results.remove(0)
}
