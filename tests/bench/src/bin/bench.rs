//! `bench`: the benchmark driver (issue 5). Starts every target echo server
//! as a subprocess, runs `loadgen` (its own process) against each in turn,
//! cell by cell, and prints a Markdown report; `--out FILE` also writes it
//! to FILE.
//!
//! It builds nothing: `wsbox`, `native-echo` and `loadgen` must be next to
//! it (`cargo build --release -p wsbox -p wsbox-bench` puts them there, and
//! the build of `wsbox-testbed`, a dependency, builds the guests, among them
//! `bench-client`, the outbound figure's client guest). The instantiation
//! figure runs in this process, with the wsbox library.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wsbox_bench::client::{ClientConfig, ClientResult};
use wsbox_bench::load::LoadResult;
use wsbox_bench::report::{
    self, Cell, HandlerRow, Machine, Measured, OutboundRow, ScaleRow, SEQUENTIAL,
};
use wsbox_bench::scale::ScaleResult;

/// Runs the wsbox benchmark and prints a Markdown report.
#[derive(Parser)]
struct Args {
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A quick run: 1 and 10 connections, 32 B and 1 KiB, 300 ms per cell,
    /// 100 connections for the scale figure.
    #[arg(long)]
    smoke: bool,
    /// Measured time per cell, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    duration_ms: u64,
    /// Warm-up per cell, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    warmup_ms: u64,
    /// Messages each connection keeps in flight.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Connections for the connection-scale figure (0: skip it).
    #[arg(long, default_value_t = 10_000)]
    scale: usize,
    /// The echo handler component (default: the test build's echo.wasm).
    #[arg(long)]
    guest: Option<PathBuf>,
    /// Skip the Node `ws` target.
    #[arg(long)]
    no_node: bool,
    /// Skip the `wsbox serve --pooling` target.
    #[arg(long)]
    no_pooling: bool,
    /// Another handler component for the instantiation and handler figure,
    /// as NAME=PATH (repeatable). The Rust `echo` handler is always first;
    /// the Python and JavaScript echo handlers (target/guests/python/echo.wasm
    /// and target/guests/js/echo.wasm, built when missing) are added as
    /// `python-echo` and `js-echo` when they can be built (not with --smoke).
    #[arg(long = "handler", value_name = "NAME=PATH")]
    handlers: Vec<String>,
    /// Instantiations one at a time per handler and allocator (0: skip the
    /// instantiation and handler figure).
    #[arg(long, default_value_t = 1000)]
    instantiations: usize,
    /// Instances made and held at once per handler and allocator.
    #[arg(long, default_value_t = 100)]
    held: usize,
    /// Alternating rounds of the outbound figure (0: skip it).
    #[arg(long, default_value_t = 3)]
    outbound_rounds: usize,
    /// Skip the echo throughput matrix (figure 1).
    #[arg(long)]
    no_echo: bool,
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start one target.
#[derive(Clone)]
struct Target {
    name: String,
    program: PathBuf,
    args: Vec<String>,
}

impl Target {
    fn describe(&self) -> String {
        let program = self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        format!("`{} {}`", program, self.args.join(" "))
    }

    /// Starts it and waits (120 s at most: a large handler component takes
    /// seconds to compile) for the `ws://ADDR` line.
    fn start(&self, logs: &Path) -> Result<Server> {
        std::fs::create_dir_all(logs)?;
        let log = std::fs::File::create(logs.join(format!("{}.log", self.name)))?;
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let mut server = Server {
            child,
            url: String::new(),
        };
        let log = logs.join(format!("{}.log", self.name));
        let line = rx.recv_timeout(Duration::from_secs(120)).with_context(|| {
            // A server that refused to start said why on stderr.
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            format!(
                "{} did not say where it listens: {}",
                self.name,
                said.lines().last().unwrap_or("(nothing on stderr)")
            )
        })?;
        let address = line
            .split("ws://")
            .nth(1)
            .with_context(|| format!("{}: no ws:// in {line:?}", self.name))?
            .trim()
            .trim_end_matches('/')
            .to_string();
        server.url = format!("ws://{address}/");
        Ok(server)
    }
}

/// `/proc/PID/stat` user + system CPU time, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// The first three fields of `/proc/loadavg`: other work on the machine
/// skews the figures, so the report shows it.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `/proc/PID/status` VmRSS, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Sets up the Node `ws` server in `dir` (npm install of `ws`, and the
/// server script); the reason when that is not possible.
fn node_target(dir: &Path) -> Result<Target, String> {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("no `node` ({e})"))?;
    if !version.status.success() {
        return Err("`node --version` failed".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !dir.join("node_modules/ws/package.json").exists() {
        eprintln!("bench: npm install ws into {}", dir.display());
        let _ = std::fs::write(dir.join("package.json"), "{\"private\": true}\n");
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "ws@8"])
            .current_dir(dir)
            .output()
            .map_err(|e| format!("no `npm` ({e})"))?;
        if !out.status.success() {
            return Err(format!(
                "`npm install ws` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let script = dir.join("echo-server.js");
    std::fs::write(&script, NODE_SERVER).map_err(|e| format!("{}: {e}", script.display()))?;
    Ok(Target {
        name: format!(
            "node-ws (Node {})",
            String::from_utf8_lossy(&version.stdout).trim()
        ),
        program: "node".into(),
        args: vec![script.display().to_string()],
    })
}

/// The Node echo server: npm `ws` at its defaults, as its README shows.
const NODE_SERVER: &str = r#"// Written by the wsbox benchmark (tests/bench): a plain `ws` echo server.
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('listening', () => console.log(`listening on ws://127.0.0.1:${wss.address().port}`));
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
"#;

/// Runs `loadgen echo` once against `server`.
fn echo_cell(
    loadgen: &Path,
    server: &Server,
    args: &Args,
    connections: usize,
    size: usize,
) -> Measured {
    let pid = server.child.id();
    let before = cpu_seconds(pid);
    let out = Command::new(loadgen)
        .args(["echo", &server.url])
        .args(["--connections", &connections.to_string()])
        .args(["--size", &size.to_string()])
        .args(["--in-flight", &args.in_flight.to_string()])
        .args(["--warmup-ms", &warmup_ms(args).to_string()])
        .args(["--duration-ms", &duration_ms(args).to_string()])
        .stdin(Stdio::null())
        .output();
    let after = cpu_seconds(pid);
    let result = match out {
        Err(e) => Err(format!("cannot run loadgen: {e}")),
        Ok(out) if !out.status.success() => Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("loadgen failed")
            .to_string()),
        Ok(out) => LoadResult::from_line(String::from_utf8_lossy(&out.stdout).trim())
            .map_err(|e| e.to_string()),
    };
    let server_cpu_us = match (&result, before, after) {
        (Ok(r), Some(b), Some(a)) if r.total_messages > 0 => {
            Some((a - b) * 1e6 / r.total_messages as f64)
        }
        _ => None,
    };
    Measured {
        target: String::new(),
        result,
        server_cpu_us,
    }
}

fn warmup_ms(args: &Args) -> u64 {
    if args.smoke {
        100
    } else {
        args.warmup_ms
    }
}

fn duration_ms(args: &Args) -> u64 {
    if args.smoke {
        300
    } else {
        args.duration_ms
    }
}

/// Starts a fresh `target`, reads its idle RSS, holds `connections`
/// connections with `loadgen scale` (opened `concurrency` at a time), reads
/// its RSS again.
fn scale_row(
    loadgen: &Path,
    target: &Target,
    logs: &Path,
    connections: usize,
    concurrency: usize,
) -> ScaleRow {
    let mut row = ScaleRow {
        target: if concurrency == 1 {
            format!("{}{SEQUENTIAL}", target.name)
        } else {
            target.name.clone()
        },
        result: Err("not run".into()),
        idle_rss_kib: None,
        held_rss_kib: None,
        held_maps: None,
        accept_to_handle_us: None,
        request_to_handle_us: None,
        instantiate_us: None,
        note: None,
    };
    let server = match target.start(logs) {
        Ok(s) => s,
        Err(e) => {
            row.result = Err(format!("{e:#}"));
            return row;
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    let pid = server.child.id();
    row.idle_rss_kib = rss_kib(pid);
    let child = Command::new(loadgen)
        .args([
            "scale",
            &server.url,
            "--connections",
            &connections.to_string(),
            "--concurrency",
            &concurrency.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            row.result = Err(format!("cannot run loadgen: {e}"));
            return row;
        }
    };
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    if !line.trim().is_empty() {
        std::thread::sleep(Duration::from_millis(500));
        row.held_rss_kib = rss_kib(pid);
        row.held_maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .ok()
            .map(|m| m.lines().count());
        row.result = ScaleResult::from_line(line.trim()).map_err(|e| e.to_string());
    }
    // A server that died while the connections were opened or held.
    let mut server = server;
    if let Ok(Some(status)) = server.child.try_wait() {
        let log = logs.join(format!("{}.log", target.name));
        let last = std::fs::read_to_string(&log)
            .ok()
            .and_then(|l| {
                l.lines()
                    .find(|l| l.contains("memory allocation") || l.contains("panicked"))
                    .map(str::to_string)
            })
            .unwrap_or_default();
        row.note = Some(format!(
            "the server died: {status}; {last} (see {})",
            log.display()
        ));
        row.held_rss_kib = None;
        row.held_maps = None;
    }
    // Let go of the connections.
    drop(child.stdin.take());
    let out = child.wait_with_output();
    if line.trim().is_empty() {
        row.result = Err(match out {
            Ok(out) => format!("loadgen failed ({}; its stderr is above)", out.status),
            Err(e) => e.to_string(),
        });
    }
    // `wsbox serve --stats` prints its latencies when it shuts down.
    if target.args.iter().any(|a| a == "--stats") {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = server.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log =
            std::fs::read_to_string(logs.join(format!("{}.log", target.name))).unwrap_or_default();
        let latency = |what: &str| {
            let prefix = format!("wsbox serve: {what} ");
            let line = log.lines().find_map(|l| l.strip_prefix(prefix.as_str()))?;
            let field = |key| wsbox_bench::line_field(line, key).ok()?.parse().ok();
            Some((field("p50_us")?, field("p99_us")?))
        };
        row.accept_to_handle_us = latency("accept-to-handle");
        row.request_to_handle_us = latency("request-to-handle");
        row.instantiate_us = latency("instantiate");
    }
    drop(server);
    row
}

/// Runs one outbound client process (`program args`), which prints `start`
/// after its warm-up and then a [`ClientResult`] line. Returns the result and
/// the process's CPU time per timed round trip, read from `/proc/PID/stat`
/// at the two lines (the process is still there, a zombie at worst, until it
/// is waited for).
/// One outbound client run: its result, and its CPU µs per round trip.
type ClientRun = (Result<ClientResult, String>, Option<f64>);

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

/// The outbound figure: the `bench-client` guest under `wsbox run` and the
/// native client (`loadgen client`), alternating, `rounds` times per size,
/// against a fresh `native-echo`; the median round of each.
fn outbound_figure(
    args: &Args,
    bins: (&Path, &Path, &Path),
    client_guest: &Path,
    logs: &Path,
) -> Result<(Vec<OutboundRow>, String)> {
    let (wsbox, native, loadgen) = bins;
    let server = Target {
        name: "outbound-native-echo".into(),
        program: native.to_path_buf(),
        args: vec!["--listen".into(), "127.0.0.1:0".into()],
    }
    .start(logs)?;
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
                let log = logs.join(format!("outbound-{client}.log"));
                let run = if i == 0 {
                    let mut a = vec![
                        "run".to_string(),
                        "--allow".into(),
                        allow.clone(),
                        client_guest.display().to_string(),
                    ];
                    a.extend(config.guest_args());
                    client_cell(wsbox, &a, &log)
                } else {
                    let mut a = vec!["client".to_string()];
                    a.extend(config.guest_args());
                    client_cell(loadgen, &a, &log)
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
                runs[i].push(run);
            }
        }
        for (i, client) in ["wsbox", "native"].iter().enumerate() {
            let mut ok: Vec<(ClientResult, Option<f64>)> = runs[i]
                .iter()
                .filter_map(|(r, c)| Some((r.as_ref().ok()?.clone(), *c)))
                .collect();
            ok.sort_by(|a, b| a.0.per_second().total_cmp(&b.0.per_second()));
            let (result, client_cpu_us) = match ok.get(ok.len() / 2) {
                Some((r, c)) if ok.len() == runs[i].len() => (Ok(r.clone()), *c),
                _ => (
                    Err(runs[i]
                        .iter()
                        .find_map(|(r, _)| r.as_ref().err().cloned())
                        .unwrap_or_else(|| "not run".into())),
                    None,
                ),
            };
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
    let wsbox_name = wsbox.file_name().unwrap_or_default().to_string_lossy();
    let described = format!(
        "- wsbox: `{wsbox_name} run --allow {allow} {} URL SIZE COUNT {window} WARMUP` (the `bench-client` guest)\n\
         - native: `loadgen client URL SIZE COUNT {window} WARMUP` (tokio-tungstenite, `connect_async` with `TCP_NODELAY`)\n\
         - server: `native-echo --listen 127.0.0.1:0`\n",
        client_guest.display()
    );
    drop(server);
    Ok((rows, described))
}

/// Handler components by name.
type Handlers = Vec<(String, PathBuf)>;

/// The handler components of the instantiation and handler figure: the
/// Rust echo first, then the Python and JS echo handlers when they can be
/// built, then `--handler NAME=PATH`; with notes for those left out.
fn handler_components(
    args: &Args,
    rust_echo: &Path,
    target_dir: &Path,
) -> Result<(Handlers, Vec<String>)> {
    let mut extra = Vec::new();
    for h in &args.handlers {
        let (name, path) = h
            .split_once('=')
            .with_context(|| format!("--handler {h:?}: expected NAME=PATH"))?;
        extra.push((name.to_string(), PathBuf::from(path)));
    }
    let mut handlers = vec![("rust-echo".to_string(), rust_echo.to_path_buf())];
    let mut notes = Vec::new();
    for (name, language) in [("python-echo", "python"), ("js-echo", "js")] {
        if extra.iter().any(|(n, _)| n == name) {
            // Given with --handler.
        } else if args.smoke {
            notes.push(format!(
                "{name}: left out in --smoke (it takes seconds to compile); add it with --handler {name}={}.",
                target_dir.join("guests").join(language).join("echo.wasm").display()
            ));
        } else {
            // Built here on first use (componentize-py, componentize-js).
            match wsbox_testbed::try_polyglot_guest(language, "echo") {
                Ok(path) => handlers.push((name.to_string(), path)),
                Err(why) => {
                    // The first line says what failed, the last what to
                    // install; the tool's output between them is left out.
                    let first = why.lines().next().unwrap_or_default();
                    let last = why.lines().last().unwrap_or_default();
                    let why = if first == last {
                        first.to_string()
                    } else {
                        format!("{first} {last}")
                    };
                    notes.push(format!("{name}: skipped: {why}"));
                }
            }
        }
    }
    handlers.extend(extra);
    Ok((handlers, notes))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let load_before = loadavg();
    wsbox_bench::raise_nofile_limit()?;
    let bin = std::env::current_exe()?
        .parent()
        .context("no directory for the bench binary")?
        .to_path_buf();
    let target_dir = bin
        .parent()
        .context("bench is not in target/PROFILE/")?
        .to_path_buf();
    let (wsbox, native, loadgen) = (
        bin.join("wsbox"),
        bin.join("native-echo"),
        bin.join("loadgen"),
    );
    for b in [&wsbox, &native, &loadgen] {
        if !b.exists() {
            bail!(
                "{} is missing: build with `cargo build --release -p wsbox -p wsbox-bench` first",
                b.display()
            );
        }
    }
    let guest = args
        .guest
        .clone()
        .unwrap_or_else(|| wsbox_testbed::guest("echo"));
    if !guest.exists() {
        bail!(
            "{} is missing: the sample guests are built by wsbox-testbed's build script \
             (`cargo build -p wsbox-testbed`; needs `rustup target add wasm32-wasip2`)",
            guest.display()
        );
    }
    let logs = target_dir.join("bench-logs");
    let guest_arg = guest.display().to_string();
    // The echo figure opens at most 1000 connections; `wsbox serve` refuses a
    // --max-connections whose instances the default allocator's memory
    // mappings could not hold (vm.max_map_count), so it is sized for them.
    let wsbox_args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-connections",
            "2000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a.push(guest_arg.clone());
        a
    };
    let mut targets = vec![
        Target {
            name: "wsbox".into(),
            program: wsbox.clone(),
            args: wsbox_args(&[]),
        },
        Target {
            name: "native".into(),
            program: native.clone(),
            args: vec!["--listen".into(), "127.0.0.1:0".into()],
        },
    ];
    if !args.no_pooling {
        targets.insert(
            1,
            Target {
                name: "wsbox-pooling".into(),
                program: wsbox.clone(),
                args: wsbox_args(&["--pooling"]),
            },
        );
    }
    let mut notes = Vec::new();
    if args.no_node {
        notes.push("Node `ws`: skipped (--no-node).".to_string());
    } else if args.no_echo {
        // Node is a target of the echo figure only.
    } else {
        match node_target(&target_dir.join("bench-node")) {
            Ok(t) => targets.push(t),
            Err(why) => notes.push(format!("Node `ws`: skipped: {why}.")),
        }
    }

    // Start every target; one that does not start is left out, with a note.
    let mut servers = Vec::new();
    for t in targets.iter().filter(|_| !args.no_echo) {
        match t.start(&logs) {
            Ok(s) => {
                eprintln!("bench: {} at {}", t.name, s.url);
                servers.push((t.clone(), s));
            }
            Err(e) => notes.push(format!("{}: did not start: {e:#}.", t.name)),
        }
    }
    if !args.no_echo && !servers.iter().any(|(t, _)| t.name == "native") {
        bail!("the native echo server did not start");
    }

    let (connections, sizes): (&[usize], &[usize]) = if args.no_echo {
        (&[], &[])
    } else if args.smoke {
        (&[1, 10], &[32, 1024])
    } else {
        (&[1, 100, 1000], &[32, 1024, 64 * 1024])
    };
    let mut cells = Vec::new();
    for &c in connections {
        for &size in sizes {
            let mut measured = Vec::new();
            for (t, s) in &servers {
                eprint!(
                    "bench: {c} connections × {} → {} … ",
                    report::size_label(size),
                    t.name
                );
                let _ = std::io::stderr().flush();
                let mut m = echo_cell(&loadgen, s, &args, c, size);
                m.target = t.name.clone();
                match &m.result {
                    Ok(r) => eprintln!(
                        "{:.0} msg/s, p50 {} µs, p99 {} µs",
                        r.per_second(),
                        r.p50_us,
                        r.p99_us
                    ),
                    Err(e) => eprintln!("failed: {e}"),
                }
                measured.push(m);
            }
            cells.push(Cell {
                connections: c,
                size,
                measured,
            });
        }
    }
    drop(servers);

    let scale_n = if args.smoke {
        args.scale.min(100)
    } else {
        args.scale
    };
    // The pooling allocator reserves its slots, and their memory mappings,
    // for --max-connections at start-up (two per fibre stack), and `wsbox
    // serve` refuses a maximum that vm.max_map_count cannot hold; so for
    // this figure the wsbox servers are sized for exactly the connections
    // held, and report their accept-to-handler latency (--stats).
    let scale_max = scale_n.max(16).to_string();
    let scale_targets: Vec<Target> = targets
        .iter()
        .filter(|t| !t.name.starts_with("node"))
        .map(|t| {
            let mut t = t.clone();
            if let Some(i) = t.args.iter().position(|a| a == "--max-connections") {
                t.args[i + 1] = scale_max.clone();
                t.args.insert(i, "--stats".into());
            }
            t
        })
        .collect();
    let mut scale_rows = Vec::new();
    if scale_n > 0 {
        // Each target with the connections opened 64 at a time, then the
        // pooling wsbox and native with them opened one at a time, where
        // the accept-to-handler latency is the server's own, not queueing
        // behind other handshakes on two cores.
        let runs = scale_targets
            .iter()
            .map(|t| (t, wsbox_bench::load::CONNECT_CONCURRENCY))
            .chain(
                scale_targets
                    .iter()
                    .filter(|t| t.name == "native" || t.args.iter().any(|a| a == "--pooling"))
                    .map(|t| (t, 1)),
            );
        for (t, concurrency) in runs {
            eprint!(
                "bench: {scale_n} connections held, {concurrency} opened at a time → {} … ",
                t.name
            );
            let _ = std::io::stderr().flush();
            let row = scale_row(&loadgen, t, &logs, scale_n, concurrency);
            match &row.result {
                Ok(r) => eprintln!(
                    "{} held, {} failed, open {:.2} s",
                    r.connections, r.failed, r.open_seconds
                ),
                Err(e) => eprintln!("failed: {e}"),
            }
            scale_rows.push(row);
        }
    }

    // Figure 3: outbound.
    let client_guest = wsbox_testbed::guest("bench-client");
    let mut outbound = Vec::new();
    let mut outbound_described = String::new();
    if args.outbound_rounds == 0 {
        notes.push("Outbound figure: skipped (--outbound-rounds 0).".into());
    } else if !client_guest.exists() {
        notes.push(format!(
            "Outbound figure: skipped: {} is not built.",
            client_guest.display()
        ));
    } else {
        match outbound_figure(&args, (&wsbox, &native, &loadgen), &client_guest, &logs) {
            Ok((rows, described)) => {
                outbound = rows;
                outbound_described = described;
            }
            Err(e) => notes.push(format!("Outbound figure: failed: {e:#}.")),
        }
    }

    // Figure 4: instantiation, and every handler component side by side.
    let (count, held) = if args.smoke {
        (args.instantiations.min(20), args.held.min(10))
    } else {
        (args.instantiations, args.held)
    };
    let mut handler_rows = Vec::new();
    let mut handler_notes = Vec::new();
    let mut handler_native = None;
    let mut handler_servers = Vec::new();
    let handler_connections = if args.smoke { 10 } else { 100 };
    if count > 0 {
        let (handlers, skipped) = handler_components(&args, &guest, &target_dir)?;
        handler_notes = skipped;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        for (name, path) in &handlers {
            let mut row = HandlerRow {
                name: name.clone(),
                size_bytes: std::fs::metadata(path).ok().map(|m| m.len()),
                default: Err("not run".into()),
                pooling: Err("not run".into()),
                echo: None,
            };
            for pooling in [false, true] {
                eprint!(
                    "bench: {count} instantiations of {name} ({}) … ",
                    if pooling {
                        "pooling"
                    } else {
                        "default allocator"
                    }
                );
                let _ = std::io::stderr().flush();
                let result = runtime
                    .block_on(wsbox_bench::instantiate::measure(
                        path, pooling, count, held,
                    ))
                    .map_err(|e| format!("{e:#}"));
                match &result {
                    Ok(i) => eprintln!(
                        "compile {:.0} ms, p50 {:.1} µs, mean {:.1} µs",
                        i.compile.as_secs_f64() * 1000.0,
                        i.p50_ns as f64 / 1000.0,
                        i.mean_ns / 1000.0
                    ),
                    Err(e) => eprintln!("failed: {e}"),
                }
                if pooling {
                    row.pooling = result;
                } else {
                    row.default = result;
                }
            }
            handler_rows.push(row);
        }
        drop(runtime);
        // Echo through `wsbox serve` (default allocator), each handler after
        // the native server, in one cell.
        let mut cell_targets = vec![Target {
            name: "native".into(),
            program: native.clone(),
            args: vec!["--listen".into(), "127.0.0.1:0".into()],
        }];
        for (name, path) in &handlers {
            let mut a = wsbox_args(&[]);
            *a.last_mut().expect("the guest is last") = path.display().to_string();
            // Sized for this cell: a large guest takes more mappings each.
            if let Some(i) = a.iter().position(|a| a == "--max-connections") {
                a[i + 1] = (2 * handler_connections).max(16).to_string();
            }
            cell_targets.push(Target {
                name: format!("serve-{name}"),
                program: wsbox.clone(),
                args: a,
            });
        }
        for t in &cell_targets {
            let measured = match t.start(&logs) {
                Ok(server) => {
                    eprint!(
                        "bench: {handler_connections} connections × 1 KiB → {} … ",
                        t.name
                    );
                    let _ = std::io::stderr().flush();
                    let m = echo_cell(&loadgen, &server, &args, handler_connections, 1024);
                    match &m.result {
                        Ok(r) => eprintln!("{:.0} msg/s", r.per_second()),
                        Err(e) => eprintln!("failed: {e}"),
                    }
                    m
                }
                Err(e) => Measured {
                    target: String::new(),
                    result: Err(format!("did not start: {e:#}")),
                    server_cpu_us: None,
                },
            };
            handler_servers.push(format!("{}: {}", t.name, t.describe()));
            match t.name.strip_prefix("serve-") {
                None => handler_native = Some(measured),
                Some(name) => {
                    if let Some(row) = handler_rows.iter_mut().find(|r| r.name == name) {
                        row.echo = Some(measured);
                    }
                }
            }
        }
    }

    let machine = Machine::detect();
    let command: Vec<String> = std::env::args().collect();
    let mut out = String::new();
    out.push_str(&format!(
        "{}\nLoad average (1, 5, 15 min) at the start: {load_before}; at the end: {}.\n\n",
        machine.line(),
        loadavg()
    ));
    out.push_str(&format!(
        "Command: `{}`; the whole run took {:.0} s.\n\n",
        command.join(" "),
        started.elapsed().as_secs_f64()
    ));
    if !args.no_echo {
        out.push_str(&format!(
            "Echo: binary messages, {} in flight per connection, {} ms warm-up then {} ms measured per cell; \
             targets run one after the other within each cell; the load generator is its own process on the same cores. \
             Round-trip times are measured by the load generator. Server CPU is the server process's user + system time \
             over the whole cell divided by its round trips.\n\n",
            args.in_flight,
            warmup_ms(&args),
            duration_ms(&args)
        ));
        out.push_str("Targets:\n\n");
        for t in &targets {
            out.push_str(&format!("- {}: {}\n", t.name, t.describe()));
        }
    }
    if !args.no_echo || !notes.is_empty() {
        out.push_str(if args.no_echo { "Notes:\n\n" } else { "" });
        for n in &notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    out.push_str("\n### Targets\n\n");
    out.push_str(&report::targets_section(
        &cells,
        "native",
        if args.no_pooling {
            "wsbox"
        } else {
            "wsbox-pooling"
        },
        &scale_rows,
        &outbound,
    ));
    if !cells.is_empty() {
        out.push_str("\n### Echo throughput and latency\n\n");
        out.push_str(&report::echo_tables(&cells, "native"));
    }
    if !scale_rows.is_empty() {
        out.push_str(&format!(
            "\n### Connection scale\n\n{scale_n} concurrent connections (at most {} being opened at a time; rows marked \"{SEQUENTIAL}\" opened them one after the other), one 32-byte echo on each, all held; \
             a fresh server process for each target and row; RSS from /proc/PID/status, idle = before the first connection. \
             Accept-to-handler is what `wsbox serve --stats` measured, from `accept` returning to `handle` being called.\n\n",
            wsbox_bench::load::CONNECT_CONCURRENCY
        ));
        out.push_str(&report::scale_table(&scale_rows));
        out.push_str("\nServers for this figure:\n\n");
        for t in &scale_targets {
            out.push_str(&format!("- {}: {}\n", t.name, t.describe()));
        }
        if let Ok(max) = std::fs::read_to_string("/proc/sys/vm/max_map_count") {
            out.push_str(&format!("\n`vm.max_map_count` = {}.\n", max.trim()));
        }
    }
    if !outbound.is_empty() {
        out.push_str(&format!(
            "\n### Outbound\n\nA client guest under `wsbox run` (a subprocess, as a user runs it) against the native echo server, \
             versus a native tokio-tungstenite client (`loadgen client`, also a subprocess) running the same loop: one connection, \
             {} binary messages in flight (send {0}, then one more after each echo), a warm-up of a tenth of the count, then the count timed \
             by the client's own clock (the component's compile time is not in it). The clients alternate, round after round; \
             the table shows each client's median round by messages/s. Client CPU is the client process's user + system time \
             over the timed loop divided by its round trips.\n\n",
            args.in_flight
        ));
        out.push_str(&report::outbound_table(&outbound, "native"));
        out.push_str("\nClients:\n\n");
        out.push_str(&outbound_described);
    }
    if !handler_rows.is_empty() {
        out.push_str(&format!(
            "\n### Instantiation and handler components\n\nWhat one fresh handler instance per connection costs, measured in this process \
             with the wsbox library (`wsbox::bench_support::HandlerPre`: the engine, linker and pre-instantiated component \
             `wsbox serve` uses; store + instance, as before `upgrade`), with the default allocator and with the pooling allocator: \
             after {} untimed, {count} instantiations one at a time (each dropped before the next; the drop timed apart), \
             then {held} made and held at once (with pooling, fresh slots). Compile is reading and compiling the component.\n\n",
            10
        ));
        out.push_str(&report::instantiation_table(&handler_rows));
        out.push_str(&format!(
            "\nEach handler component next to the Rust `echo`: size on disk, compile time, instantiation p50 (from the table above) \
             and echo throughput at 1 KiB × {handler_connections} connections ({} in flight each, same warm-up and duration as above) \
             through `wsbox serve` with the default allocator, measured one after the other with the native server first.\n\n",
            args.in_flight
        ));
        out.push_str(&report::handlers_table(
            &handler_rows,
            handler_native.as_ref(),
        ));
        out.push_str("\nServers for this figure:\n\n");
        for d in &handler_servers {
            out.push_str(&format!("- {d}\n"));
        }
        for n in &handler_notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    print!("{out}");
    if let Some(path) = &args.out {
        std::fs::write(path, &out).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(())
}
