//! Spawning the host's background tasks so that a panic in one is never
//! mistaken for a normal end: it is logged at error level and counted.

use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::task::JoinHandle;

static PANICS: AtomicU64 = AtomicU64::new(0);

/// How many of the host's tasks (connections, their readers and drivers,
/// server connections) have panicked in this process. A panic is a bug in
/// wsbox, never the guest's or the peer's doing: tests assert that this
/// stays zero.
pub fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

/// Runs `future` to its end, catching a panic: `None` then, after it was
/// logged (naming `what`) and counted in [`panics`].
///
/// A combinator rather than an `async fn`: an `async fn` would hold
/// `future` twice in its state (as its argument and as the awaited value),
/// which doubles the memory of every connection's tasks.
pub fn supervised<F: Future>(
    what: &'static str,
    future: F,
) -> impl Future<Output = Option<F::Output>> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .map(move |ended| match ended {
            Ok(output) => Some(output),
            Err(panic) => {
                PANICS.fetch_add(1, Ordering::Relaxed);
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                tracing::error!("wsbox bug: the {what} task panicked: {message}");
                None
            }
        })
}

/// Spawns `future` on the current runtime, [`supervised`].
pub(crate) fn spawn<F>(what: &'static str, future: F) -> JoinHandle<Option<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(supervised(what, future))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails() -> u32 {
        panic!("on purpose")
    }

    // One test, not two: the counter is process-wide, so a panic in a
    // parallel test would break the assertion that a normal end counts none.
    #[tokio::test]
    async fn a_panic_yields_none_and_counts_once_a_normal_end_its_output() {
        let before = panics();
        assert_eq!(spawn("test", async { 7 }).await.unwrap(), Some(7));
        assert_eq!(panics(), before, "a normal end counts no panic");

        let result = spawn("test", async { fails() }).await;
        let result = result.expect("the panic is caught inside the task");
        assert_eq!(result, None, "a panicked task yields None");
        assert_eq!(panics() - before, 1, "the panic counts exactly once");
    }
}
