//! How long a test waits for anything before it fails: one bound, and the
//! helper that applies it and names what was awaited.

use std::future::Future;
use std::time::Duration;

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// Awaits `future` for at most [`WAIT`]; past it the test fails with a
/// message that names `what` it was waiting for.
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    within_for(WAIT, what, future).await
}

/// Awaits `future` for at most `wait`; past it the test fails naming `what`.
pub async fn within_for<F: Future>(wait: Duration, what: &str, future: F) -> F::Output {
    tokio::time::timeout(wait, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {wait:?} waiting for {what}"))
}
