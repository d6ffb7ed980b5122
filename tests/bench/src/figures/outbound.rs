//! Figure 3, outbound: the `bench-client` guest under `wsbox run` and the
//! native client (`loadgen client`), alternating, against a fresh
//! `native-echo`; the median round of each.

use super::process::cpu_seconds;
use super::{Args, Setup};
use crate::client::{ClientConfig, ClientResult};
use crate::report::{self, OutboundRow};
use anyhow::Result;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// What the figure measured, and how.
#[derive(Default)]
pub(super) struct OutboundFigure {
    /// One per size and client.
    pub(super) rows: Vec<OutboundRow>,
    /// The clients' and the server's command lines, as Markdown items.
    pub(super) described: String,
}

/// The figure, or a note saying why it was not run.
pub(super) fn figure(args: &Args, setup: &Setup, notes: &mut Vec<String>) -> OutboundFigure {
    let client_guest = wsbox_testbed::guest("bench-client");
    if args.outbound_rounds == 0 {
        notes.push("Outbound figure: skipped (--outbound-rounds 0).".into());
    } else if !client_guest.exists() {
        notes.push(format!(
            "Outbound figure: skipped: {} is not built.",
            client_guest.display()
        ));
    } else {
        match measure(args, setup, &client_guest) {
            Ok(figure) => return figure,
            Err(e) => notes.push(format!("Outbound figure: failed: {e:#}.")),
        }
    }
    OutboundFigure::default()
}

/// One outbound client run: its result, and its CPU µs per round trip.
type ClientRun = (Result<ClientResult, String>, Option<f64>);

/// The clients run `rounds` times per size, alternating.
fn measure(args: &Args, setup: &Setup, client_guest: &Path) -> Result<OutboundFigure> {
    let server = setup
        .native_target("outbound-native-echo")
        .start(&setup.logs)?;
    let address = server
        .url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_string();
    let allow = format!("ws://{address}");
    // (size, timed round trips): about 2-5 s of the wsbox client each.
    let sizes: &[(usize, usize)] = if args.smoke {
        &[(1024, 300), (64 * 1024, 100)]
    } else {
        &[(1024, 60_000), (64 * 1024, 15_000)]
    };
    let rounds = if args.smoke { 1 } else { args.outbound_rounds };
    let window = args.in_flight;
    let mut rows = Vec::new();
    for &(size, count) in sizes {
        let config = ClientConfig {
            url: server.url.clone(),
            size,
            count,
            window,
            warmup: count / 10,
        };
        let mut runs: [Vec<ClientRun>; 2] = Default::default();
        for round in 0..rounds {
            for (i, client) in ["wsbox", "native"].iter().enumerate() {
                eprint!(
                    "bench: outbound {} × {count}, round {} → {client} … ",
                    report::size_label(size),
                    round + 1
                );
                let _ = std::io::stderr().flush();
                let run = client_run(setup, client, &config, &allow, client_guest);
                runs[i].push(run);
            }
        }
        for (i, client) in ["wsbox", "native"].iter().enumerate() {
            let (result, client_cpu_us) = median(&runs[i]);
            rows.push(OutboundRow {
                size,
                window,
                client: client.to_string(),
                result,
                client_cpu_us,
                rounds,
            });
        }
    }
    let wsbox_name = setup
        .wsbox
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let described = format!(
        "- wsbox: `{wsbox_name} run --allow {allow} {} URL SIZE COUNT {window} WARMUP` (the `bench-client` guest)\n\
         - native: `loadgen client URL SIZE COUNT {window} WARMUP` (tokio-tungstenite, `connect_async` with `TCP_NODELAY`)\n\
         - server: `native-echo --listen 127.0.0.1:0`\n",
        client_guest.display()
    );
    drop(server);
    Ok(OutboundFigure { rows, described })
}

/// One run of `client` (`wsbox`: the guest under `wsbox run`; `native`:
/// `loadgen client`), said on stderr.
fn client_run(
    setup: &Setup,
    client: &str,
    config: &ClientConfig,
    allow: &str,
    client_guest: &Path,
) -> ClientRun {
    let log = setup.logs.join(format!("outbound-{client}.log"));
    let run = if client == "wsbox" {
        let mut a = vec![
            "run".to_string(),
            "--allow".into(),
            allow.to_string(),
            client_guest.display().to_string(),
        ];
        a.extend(config.guest_args());
        client_cell(&setup.wsbox, &a, &log)
    } else {
        let mut a = vec!["client".to_string()];
        a.extend(config.guest_args());
        client_cell(&setup.loadgen, &a, &log)
    };
    match &run.0 {
        Ok(r) => eprintln!(
            "{:.0} msg/s, p50 {} µs, p99 {} µs",
            r.per_second(),
            r.p50_us,
            r.p99_us
        ),
        Err(e) => eprintln!("failed: {e}"),
    }
    run
}

/// The median run by messages/s, when every run worked; else the first
/// failure.
fn median(runs: &[ClientRun]) -> ClientRun {
    let mut ok: Vec<(ClientResult, Option<f64>)> = runs
        .iter()
        .filter_map(|(r, c)| Some((r.as_ref().ok()?.clone(), *c)))
        .collect();
    ok.sort_by(|a, b| a.0.per_second().total_cmp(&b.0.per_second()));
    match ok.get(ok.len() / 2) {
        Some((r, c)) if ok.len() == runs.len() => (Ok(r.clone()), *c),
        _ => (
            Err(runs
                .iter()
                .find_map(|(r, _)| r.as_ref().err().cloned())
                .unwrap_or_else(|| "not run".into())),
            None,
        ),
    }
}

/// Runs one outbound client process (`program args`), which prints `start`
/// after its warm-up and then a [`ClientResult`] line. Returns the result and
/// the process's CPU time per timed round trip, read from `/proc/PID/stat`
/// at the two lines (the process is still there, a zombie at worst, until it
/// is waited for).
fn client_cell(program: &Path, args: &[String], log: &Path) -> ClientRun {
    let stderr = match std::fs::File::create(log) {
        Ok(f) => f,
        Err(e) => return (Err(format!("{}: {e}", log.display())), None),
    };
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return (Err(format!("cannot run {}: {e}", program.display())), None),
    };
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let (mut start_cpu, mut result, mut cpu) = (None, None, None);
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line == "start" {
            start_cpu = cpu_seconds(pid);
        } else if line.contains("messages=") {
            let end_cpu = cpu_seconds(pid);
            let parsed = ClientResult::from_line(line).map_err(|e| e.to_string());
            if let (Ok(r), Some(a), Some(b)) = (&parsed, start_cpu, end_cpu) {
                if r.messages > 0 {
                    cpu = Some((b - a) * 1e6 / r.messages as f64);
                }
            }
            result = Some(parsed);
        }
    }
    let status = child.wait();
    let result = result.unwrap_or_else(|| {
        let last = std::fs::read_to_string(log)
            .ok()
            .and_then(|l| l.lines().last().map(str::to_string))
            .unwrap_or_default();
        Err(format!(
            "no result ({}): {last}",
            status.map_or_else(|e| e.to_string(), |s| s.to_string())
        ))
    });
    (result, cpu)
}
