//! Best-effort clean-up from `Drop`, which cannot be async.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::Handle;

/// How long a dropped sink waits for its clean-up request.
const CLEANUP_WAIT: Duration = Duration::from_secs(30);

/// Runs `cleanup` on `handle` and waits for it at most [`CLEANUP_WAIT`].
///
/// Spawned rather than `block_on`, which panics when a sink is dropped inside async code;
/// the bounded wait keeps such a drop from hanging a single-threaded runtime for good.
pub(super) fn run(handle: &Handle, cleanup: impl Future<Output = ()> + Send + 'static) {
    let (done, wait) = std::sync::mpsc::channel();
    handle.spawn(async move {
        cleanup.await;
        let _ = done.send(());
    });
    let _ = wait.recv_timeout(CLEANUP_WAIT);
}
