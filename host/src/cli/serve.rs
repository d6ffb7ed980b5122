//! `wsbox serve`: binds the listeners, serves until a signal, reloads on request, prints the stats.

use super::args::{LogFormat, ServeArgs};
use super::log::notice;
use super::plan::Given;
use super::reload::{watched_files, Reloader};
use super::signals::{on_sighup, shutdown_signal};
use super::watch::{look, watch};
use anyhow::{Context, Result};
use clap::ArgMatches;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wsbox::Server;

/// Serves until SIGINT or SIGTERM; `--check` only builds the server.
pub(crate) async fn serve(
    args: ServeArgs,
    matches: Option<ArgMatches>,
    format: LogFormat,
) -> Result<ExitCode> {
    let given = Given(matches.as_ref());
    args.check_flags_for_config(&given)?;
    let websocket = args.limits.config().await?;
    let broker = websocket.broker.clone();
    let plan = args.plan(&websocket, &given)?;
    let manifest = plan.manifest.as_ref();
    let config = args.serve_config(websocket.clone(), manifest, &given, format)?;
    let tls = config.tls.is_some();
    let listen = args.listen(manifest);
    let metrics = args.metrics(manifest);
    let watched = watched_files(&args.config, &plan.routes);
    // Before the components are read, so that a change after that is seen.
    let seen = look(&watched);
    let watched = Arc::new(Mutex::new(watched));
    let routes = plan.routes.len();
    let server = Server::with_routes(plan.routes, config)?;
    if args.check {
        print_check(&args, routes);
        return Ok(ExitCode::SUCCESS);
    }
    let (reload, reloads) = tokio::sync::mpsc::channel::<&'static str>(1);
    // Before the listening line, which tells a supervisor it may signal.
    let sighup = on_sighup(reload.clone());
    let (listener, metrics_listener) = bind(&listen, metrics.as_deref(), tls).await?;
    let (stop_metrics, metrics_task) = start_metrics(&server, metrics_listener);
    let mut background = tokio::task::JoinSet::new();
    background.spawn(wsbox::supervised("SIGHUP", sighup));
    if args.watch {
        background.spawn(wsbox::supervised(
            "file watch",
            watch(watched.clone(), reload.clone(), seen),
        ));
    }
    let args = Arc::new(args);
    let reloader = Reloader {
        args: args.clone(),
        matches,
        websocket,
        server: server.clone(),
        watched,
        format,
    };
    background.spawn(wsbox::supervised("reload", reloader.run(reloads)));

    server.serve(listener, shutdown_signal()).await?;
    background.abort_all();
    let _ = stop_metrics.send(());
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    broker.flush().await;
    if args.stats {
        print_stats(&server)?;
    }
    notice(format, "shut down");
    Ok(ExitCode::SUCCESS)
}

/// `--check`'s answer: what can serve, and how many routes.
fn print_check(args: &ServeArgs, routes: usize) {
    let what = match &args.config {
        Some(file) => file.display().to_string(),
        None => args
            .component
            .as_deref()
            .map(|c| c.display().to_string())
            .unwrap_or_default(),
    };
    println!(
        "wsbox serve: {what} can serve ({routes} route{})",
        if routes == 1 { "" } else { "s" }
    );
}

/// Binds the WebSocket listener and the metrics one, if any, and prints
/// their addresses.
async fn bind(
    listen: &str,
    metrics: Option<&str>,
    tls: bool,
) -> Result<(TcpListener, Option<TcpListener>)> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let metrics_listener = match metrics {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot serve the metrics on {address}"))?,
        ),
        None => None,
    };
    let address = listener.local_addr()?;
    let scheme = if tls { "wss" } else { "ws" };
    println!("wsbox serve: listening on {scheme}://{address}");
    if let Some(metrics) = &metrics_listener {
        println!("wsbox serve: metrics on http://{}", metrics.local_addr()?);
    }
    std::io::Write::flush(&mut std::io::stdout())?;
    Ok((listener, metrics_listener))
}

/// Serves the metrics on `listener`, if any, until the sender is used or
/// dropped.
fn start_metrics(
    server: &Server,
    listener: Option<TcpListener>,
) -> (oneshot::Sender<()>, Option<JoinHandle<Option<()>>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = listener.map(|listener| {
        let server = server.clone();
        tokio::spawn(wsbox::supervised("metrics listener", async move {
            server
                .serve_metrics(listener, async {
                    let _ = stopped.await;
                })
                .await
        }))
    });
    (stop, task)
}

/// `--stats`: the server's figures and the host's task panics, as one
/// JSON line (README, `wsbox serve`).
fn print_stats(server: &Server) -> Result<()> {
    let stats = server.stats();
    eprintln!("wsbox serve: stats {}", serde_json::to_string(&stats)?);
    Ok(())
}
