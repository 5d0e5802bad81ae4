//! One read of the capture for every output of a run.
//!
//! The distributors a factory makes together share a [`SharedCapture`]; each holds a
//! [`Ticket`]. A distributor turns its ticket into as many feeds as it writes outputs, or
//! drops it when it writes none. Once every ticket is settled one thread decodes the capture
//! and hands each chunk to every feed. Chunks are reference-counted, so memory is bounded by
//! the feeds' small queues whatever the number of outputs, and the slowest output sets the
//! pace for all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

use imagebuilder_core::distribute::CapturedImage;
use imagebuilder_core::error_chain;

use crate::disk::{open_reader, Chunk};

/// Chunks queued per feed before the reader waits for that feed's writer.
const FEED_DEPTH: usize = 4;

/// What a feed carries.
#[derive(Debug, Clone)]
pub(crate) enum FeedItem {
    /// The next chunk of the virtual disk.
    Chunk(Chunk),
    /// The whole disk has been sent.
    End,
    /// The capture could not be read; the message says why.
    Failed(String),
}

/// The receiving end of one output's feed.
pub(crate) type Feed = Receiver<FeedItem>;

/// The capture shared by the distributors of one run.
#[derive(Debug)]
pub(crate) struct SharedCapture {
    state: Mutex<State>,
    reads: Arc<AtomicU64>,
}

#[derive(Debug, Default)]
struct State {
    unsettled: usize,
    image: Option<CapturedImage>,
    senders: Vec<SyncSender<FeedItem>>,
}

/// A distributor's claim on the shared capture; settle it by [`Ticket::feeds`] or by
/// dropping it.
#[derive(Debug)]
pub(crate) struct Ticket {
    shared: Arc<SharedCapture>,
    settled: bool,
}

impl SharedCapture {
    /// A capture shared by `distributors` tickets; `reads` counts the passes over captures.
    pub(crate) fn new(distributors: usize, reads: Arc<AtomicU64>) -> (Arc<Self>, Vec<Ticket>) {
        let shared = Arc::new(Self {
            state: Mutex::new(State {
                unsettled: distributors,
                ..State::default()
            }),
            reads,
        });
        let tickets = (0..distributors)
            .map(|_| Ticket {
                shared: shared.clone(),
                settled: false,
            })
            .collect();
        (shared, tickets)
    }

    fn settle(&self, joining: Option<(&CapturedImage, Vec<SyncSender<FeedItem>>)>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.unsettled -= 1;
        if let Some((image, senders)) = joining {
            match &state.image {
                Some(first) if first.path != image.path => {
                    // One run has one capture; a second one is a caller's mistake.
                    for sender in senders {
                        let _ = sender.try_send(FeedItem::Failed(format!(
                            "internal error: one shared capture was asked for two files ({} and {})",
                            first.path.display(),
                            image.path.display()
                        )));
                    }
                }
                Some(_) => state.senders.extend(senders),
                None => {
                    state.image = Some(image.clone());
                    state.senders.extend(senders);
                }
            }
        }
        if state.unsettled == 0 && !state.senders.is_empty() {
            let senders = std::mem::take(&mut state.senders);
            if let Some(image) = state.image.clone() {
                let reads = self.reads.clone();
                std::thread::spawn(move || broadcast_or_report_panic(&image, senders, &reads));
            }
        }
    }
}

impl Ticket {
    /// `outputs` feeds of `image`, which start flowing once every ticket is settled.
    pub(crate) fn feeds(mut self, image: &CapturedImage, outputs: usize) -> Vec<Feed> {
        let (senders, feeds): (Vec<_>, Vec<_>) =
            (0..outputs).map(|_| sync_channel(FEED_DEPTH)).unzip();
        self.settled = true;
        self.shared.settle(Some((image, senders)));
        feeds
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.shared.settle(None);
        }
    }
}

/// [`broadcast`], telling every feed why if the reader panics.
fn broadcast_or_report_panic(
    image: &CapturedImage,
    senders: Vec<SyncSender<FeedItem>>,
    reads: &AtomicU64,
) {
    let spare = senders.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        broadcast(image, senders, reads);
    }));
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        for sender in spare {
            let _ = sender.try_send(FeedItem::Failed(format!(
                "internal error: the capture reader panicked: {message}"
            )));
        }
    }
}

/// Reads `image` once and sends every chunk to every feed still listening.
fn broadcast(image: &CapturedImage, mut senders: Vec<SyncSender<FeedItem>>, reads: &AtomicU64) {
    let send_all = |senders: &mut Vec<SyncSender<FeedItem>>, item: FeedItem| {
        senders.retain(|sender| sender.send(item.clone()).is_ok());
    };
    let mut reader = match open_reader(&image.path, image.format) {
        Ok(reader) => reader,
        Err(e) => return send_all(&mut senders, FeedItem::Failed(error_chain(&e))),
    };
    reads.fetch_add(1, Ordering::Relaxed);
    loop {
        match reader.next_chunk() {
            Ok(Some(chunk)) => {
                send_all(&mut senders, FeedItem::Chunk(chunk));
                if senders.is_empty() {
                    return;
                }
            }
            Ok(None) => return send_all(&mut senders, FeedItem::End),
            Err(e) => return send_all(&mut senders, FeedItem::Failed(error_chain(&e))),
        }
    }
}
