//! The signals `wsbox serve` answers: SIGHUP reloads, SIGINT and SIGTERM shut down.

/// Asks for a reload on every SIGHUP.
pub(crate) async fn on_sighup(reload: tokio::sync::mpsc::Sender<&'static str>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangups.recv().await.is_some() {
        // One waiting is enough: it reads the files as they are then.
        let _ = reload.try_send("SIGHUP");
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
