//! The fan-out figure (issue 13): one publisher and many receivers of 1 KiB
//! messages, through `wsbox serve` with the `fanout` handler on one node and
//! on two nodes linked by a real `nats-server`, the native tokio-tungstenite
//! broadcast server (`native-broadcast`) and a Node `ws` broadcast server;
//! `loadgen fanout` (its own process) measures deliveries per second and
//! publish-to-receive latency. Every cell (receiver count × target) gets
//! fresh server processes; their CPU time is read when the load generator
//! says it starts measuring and when it prints its result.

use super::process::{cpu_seconds, Server, Target};
use super::{Args, Setup};
use crate::fanout::FanoutResult;
use crate::nats::Nats;
use crate::report::{count_label, FanoutRow};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Bytes per message.
pub(super) const SIZE: usize = 1024;

/// Connections a wsbox node may hold beyond its receivers (the publisher).
const SPARE_CONNECTIONS: usize = 16;

/// What the figure measured, and how.
pub(super) struct FanoutFigure {
    /// Receivers per cell.
    pub(super) receivers: Vec<usize>,
    /// Messages outstanding at most.
    pub(super) window: usize,
    /// Deliveries aimed at per cell (messages = this ÷ receivers).
    pub(super) deliveries: usize,
    /// How each target was started, for its last cell: its name and
    /// Markdown items.
    pub(super) described: Vec<(String, Vec<String>)>,
    /// One per receiver count and target.
    pub(super) rows: Vec<FanoutRow>,
    /// Targets left out, and why.
    pub(super) notes: Vec<String>,
}

/// A way of serving the fan-out.
enum Kind {
    /// `wsbox serve --pooling` with the `fanout` handler.
    Wsbox,
    /// Two of them linked through a `nats-server`; the publisher and half
    /// the receivers on the first.
    WsboxTwoNodes,
    /// `native-broadcast`, or the Node `ws` broadcast server.
    Plain(Target),
}

/// The processes of one cell, killed when dropped.
struct Running {
    servers: Vec<Server>,
    nats: Option<Nats>,
    publisher: String,
    receivers: Vec<String>,
    described: Vec<String>,
}

impl Running {
    fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.servers.iter().map(Server::pid).collect();
        pids.extend(self.nats.as_ref().map(Nats::pid));
        pids
    }

    /// The servers' CPU time together, in seconds.
    fn cpu_seconds(&self) -> Option<f64> {
        self.pids().into_iter().map(cpu_seconds).sum()
    }

    /// A note when a server exited during the cell.
    fn died(&mut self) -> Option<String> {
        self.servers.iter_mut().find_map(|s| {
            let status = s.child.try_wait().ok()??;
            Some(format!("a server exited during the run: {status}"))
        })
    }
}

/// Runs the figure, unless `--no-fanout`.
pub(super) fn figure(args: &Args, setup: &Setup) -> FanoutFigure {
    let (receivers, deliveries) = if args.smoke {
        (vec![20], 1000)
    } else {
        (args.fanout_receivers.clone(), args.fanout_deliveries)
    };
    let mut figure = FanoutFigure {
        receivers,
        window: args.fanout_window,
        deliveries,
        described: Vec::new(),
        rows: Vec::new(),
        notes: Vec::new(),
    };
    if args.no_fanout {
        return figure;
    }
    let guest = wsbox_testbed::guest("fanout");
    let mut kinds = Vec::new();
    if guest.exists() {
        kinds.push(("wsbox".to_string(), Kind::Wsbox));
        let nats = crate::nats::binary();
        if Command::new(&nats)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            kinds.push(("wsbox-2-nodes".to_string(), Kind::WsboxTwoNodes));
        } else {
            figure.notes.push(format!(
                "wsbox on two nodes: skipped: no {} (apt-get install nats-server, or set WSBOX_NATS_SERVER).",
                nats.display()
            ));
        }
    } else {
        figure.notes.push(format!(
            "wsbox: skipped: {} is not built (the build of wsbox-testbed builds it).",
            guest.display()
        ));
    }
    kinds.push((
        "native".to_string(),
        Kind::Plain(Target {
            name: "native".into(),
            program: setup.native_broadcast.clone(),
            args: vec!["--listen".into(), "127.0.0.1:0".into()],
        }),
    ));
    if args.no_node {
        figure
            .notes
            .push("Node `ws`: skipped (--no-node).".to_string());
    } else {
        match super::process::node_broadcast_target(&setup.target_dir.join("bench-node")) {
            Ok(t) => kinds.push((t.name.clone(), Kind::Plain(t))),
            Err(why) => figure.notes.push(format!("Node `ws`: skipped: {why}.")),
        }
    }
    for &receivers in &figure.receivers.clone() {
        let messages = (figure.deliveries / receivers.max(1)).max(20);
        for (name, kind) in &kinds {
            eprint!(
                "bench: fan-out, {} receivers × {messages} messages → {name} … ",
                count_label(receivers)
            );
            let _ = std::io::stderr().flush();
            let (row, described) = cell(setup, &guest, name, kind, receivers, messages, &figure);
            match &row.result {
                Ok(r) => eprintln!(
                    "{:.0} deliveries/s, p50 {} µs, p99 {} µs, lost {}",
                    r.per_second(),
                    r.p50_us,
                    r.p99_us,
                    r.lost
                ),
                Err(e) => eprintln!("failed: {e}"),
            }
            if !described.is_empty() {
                figure.described.retain(|(n, _)| n != name);
                figure.described.push((name.clone(), described));
            }
            figure.rows.push(row);
        }
    }
    figure
}

/// `wsbox serve --pooling` of `guest`, sized for `receivers`, named `name`.
fn wsbox_target(
    setup: &Setup,
    guest: &Path,
    name: &str,
    receivers: usize,
    cluster: Option<&str>,
) -> Target {
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--pooling",
        "--max-connections",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push((receivers + SPARE_CONNECTIONS).to_string());
    if let Some(url) = cluster {
        args.extend(["--cluster".to_string(), url.to_string()]);
    }
    args.push(guest.display().to_string());
    Target {
        name: name.into(),
        program: setup.wsbox.clone(),
        args,
    }
}

/// Starts the servers of one cell.
fn start(
    setup: &Setup,
    guest: &Path,
    name: &str,
    kind: &Kind,
    receivers: usize,
) -> anyhow::Result<Running> {
    let mut running = Running {
        servers: Vec::new(),
        nats: None,
        publisher: String::new(),
        receivers: Vec::new(),
        described: Vec::new(),
    };
    let targets = match kind {
        Kind::Wsbox => vec![wsbox_target(setup, guest, name, receivers, None)],
        Kind::WsboxTwoNodes => {
            std::fs::create_dir_all(&setup.logs)?;
            let nats = Nats::start(&setup.logs.join("nats-server.log"))?;
            running
                .described
                .push(format!("{name}: `nats-server -a 127.0.0.1 -p -1`, then:"));
            let half = receivers.div_ceil(2);
            let nodes = ["a", "b"].map(|node| {
                wsbox_target(
                    setup,
                    guest,
                    &format!("{name}-{node}"),
                    half,
                    Some(&nats.url),
                )
            });
            running.nats = Some(nats);
            nodes.to_vec()
        }
        Kind::Plain(t) => vec![t.clone()],
    };
    for t in targets {
        let server = t.start(&setup.logs)?;
        running.receivers.push(format!("{}sub", server.url));
        running
            .described
            .push(format!("{}: {}", t.name, t.describe()));
        running.servers.push(server);
    }
    running.publisher = format!("{}pub", running.servers[0].url);
    Ok(running)
}

/// One cell: fresh servers, `loadgen fanout`, the servers' CPU over the
/// measured phase. Returns the row and how the servers were started.
fn cell(
    setup: &Setup,
    guest: &Path,
    name: &str,
    kind: &Kind,
    receivers: usize,
    messages: usize,
    figure: &FanoutFigure,
) -> (FanoutRow, Vec<String>) {
    let mut row = FanoutRow {
        receivers,
        target: name.to_string(),
        result: Err("not run".into()),
        server_cpu_us: None,
    };
    let mut running = match start(setup, guest, name, kind, receivers) {
        Ok(r) => r,
        Err(e) => {
            row.result = Err(format!("{e:#}"));
            return (row, Vec::new());
        }
    };
    let log = setup.logs.join(format!("loadgen-fanout-{name}.log"));
    let result = run_loadgen(&setup.loadgen, &running, receivers, messages, figure, &log);
    match result {
        Ok((result, cpu)) => {
            row.server_cpu_us = cpu
                .filter(|_| result.total_deliveries > 0)
                .map(|cpu| cpu * 1e6 / result.total_deliveries as f64);
            row.result = Ok(result);
        }
        Err(e) => row.result = Err(e),
    }
    if let Some(died) = running.died() {
        row.result = Err(format!("{died} (see {})", setup.logs.display()));
    }
    let described = std::mem::take(&mut running.described);
    (row, described)
}

/// Runs `loadgen fanout` against `running`: its result, and the servers'
/// CPU seconds between its `measuring` line and its result.
fn run_loadgen(
    loadgen: &Path,
    running: &Running,
    receivers: usize,
    messages: usize,
    figure: &FanoutFigure,
    log: &PathBuf,
) -> Result<(FanoutResult, Option<f64>), String> {
    let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(loadgen)
        .arg("fanout")
        .arg(&running.publisher)
        .args(&running.receivers)
        .args(["--receivers", &receivers.to_string()])
        .args(["--size", &SIZE.to_string()])
        .args(["--messages", &messages.to_string()])
        .args(["--window", &figure.window.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run loadgen: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut before = None;
    let mut outcome = Err(String::new());
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if line.trim() == "measuring" {
            before = running.cpu_seconds();
        } else if line.contains("deliveries=") {
            let after = running.cpu_seconds();
            outcome = FanoutResult::from_line(line.trim())
                .map(|r| (r, before.zip(after).map(|(b, a)| a - b)))
                .map_err(|e| e.to_string());
            break;
        }
    }
    // Let it close the connections and exit.
    for _ in lines {}
    let status = child.wait();
    if let Err(empty) = &outcome {
        if empty.is_empty() {
            let said = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!(
                "loadgen failed ({}): {}",
                status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                said.lines().last().unwrap_or("nothing on stderr")
            ));
        }
    }
    outcome
}
