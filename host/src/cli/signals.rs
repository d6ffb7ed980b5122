//! The signals `wsbox serve` answers: SIGHUP reloads, SIGINT and SIGTERM shut down.

use std::future::Future;

/// Asks for a reload on every SIGHUP. It takes over SIGHUP when called, not
/// when first polled: a SIGHUP sent as soon as the listening line is out
/// must reload, not end the process.
pub(crate) fn on_sighup(
    reload: tokio::sync::mpsc::Sender<&'static str>,
) -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let hangups = signal(SignalKind::hangup());
    async move {
        let Ok(mut hangups) = hangups else {
            return;
        };
        while hangups.recv().await.is_some() {
            // One waiting is enough: it reads the files as they are then.
            let _ = reload.try_send("SIGHUP");
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
