//! Publishing machinery every distributor shares: one read of the capture fanned out to many
//! outputs, each written to a file or an object store on a blocking thread.

mod feed;
mod output;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use imagebuilder_core::distribute::{CapturedImage, DistributeContext};
use imagebuilder_core::template::model::OutputFormat;

pub(crate) use feed::{Feed, SharedCapture, Ticket};
pub(crate) use output::{Destination, Written};

use output::{write_output, OutputJob};

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
}

/// Sets the flag when dropped: a dropped distribution stops its blocking writers.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Writes `outputs` of `image` concurrently, reporting progress as the slowest one's, and
/// returns each one's result in order. Dropping the future stops the writers, which remove
/// what they wrote.
pub(crate) async fn write_all(
    outputs: Vec<Output>,
    image: &CapturedImage,
    run_output_name: &str,
    cx: &DistributeContext<'_>,
) -> Vec<Result<Written, String>> {
    let cancel = Arc::new(AtomicBool::new(false));
    let _stop = CancelOnDrop(cancel.clone());
    let handle = tokio::runtime::Handle::current();
    let counters: Vec<Arc<AtomicU64>> = outputs.iter().map(|_| Arc::default()).collect();
    let tasks = outputs.into_iter().zip(&counters).map(|(output, counter)| {
        let counter = counter.clone();
        let job = OutputJob {
            feed: output.feed,
            format: output.format,
            virtual_size: image.virtual_size,
            destination: output.destination,
            spool_dir: cx.staging_dir.join("spool"),
            cancel: cancel.clone(),
            progress: Box::new(move |done| counter.store(done, Ordering::Relaxed)),
            handle: handle.clone(),
        };
        tokio::task::spawn_blocking(move || write_output(job))
    });
    let all = join_all(tasks);
    tokio::pin!(all);
    let total = image.virtual_size;
    let results = loop {
        tokio::select! {
            results = &mut all => break results,
            () = tokio::time::sleep(PROGRESS_EVERY) => {
                let done = counters.iter().map(|c| c.load(Ordering::Relaxed)).min().unwrap_or(0);
                cx.progress.bytes(run_output_name, done, total);
            }
        }
    };
    cx.progress.bytes(run_output_name, total, total);
    results
        .into_iter()
        .map(|joined| joined.unwrap_or_else(|e| Err(format!("the writer stopped: {e}"))))
        .collect()
}
