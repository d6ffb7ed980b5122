//! `bench`: the benchmark driver (issue 5). Starts every target echo server
//! as a subprocess, runs `loadgen` (its own process) against each in turn,
//! cell by cell, and prints a Markdown report; `--out FILE` also writes it
//! to FILE.
//!
//! It builds nothing: `wsbox`, `native-echo` and `loadgen` must be next to
//! it (`cargo build --release -p wsbox -p wsbox-bench` puts them there, and
//! the build of `wsbox-testbed`, a dependency, builds the guests).

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wsbox_bench::load::LoadResult;
use wsbox_bench::report::{self, Cell, Machine, Measured, ScaleRow};
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

    /// Starts it and waits (10 s at most) for the `ws://ADDR` line.
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
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .with_context(|| format!("{} did not say where it listens", self.name))?;
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
/// connections with `loadgen scale`, reads its RSS again.
fn scale_row(loadgen: &Path, target: &Target, logs: &Path, connections: usize) -> ScaleRow {
    let mut row = ScaleRow {
        target: target.name.clone(),
        result: Err("not run".into()),
        idle_rss_kib: None,
        held_rss_kib: None,
        held_maps: None,
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
    drop(server);
    row
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
    let wsbox_args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-connections",
            "20000",
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
    } else {
        match node_target(&target_dir.join("bench-node")) {
            Ok(t) => targets.push(t),
            Err(why) => notes.push(format!("Node `ws`: skipped: {why}.")),
        }
    }

    // Start every target; one that does not start is left out, with a note.
    let mut servers = Vec::new();
    for t in &targets {
        match t.start(&logs) {
            Ok(s) => {
                eprintln!("bench: {} at {}", t.name, s.url);
                servers.push((t.clone(), s));
            }
            Err(e) => notes.push(format!("{}: did not start: {e:#}.", t.name)),
        }
    }
    if !servers.iter().any(|(t, _)| t.name == "native") {
        bail!("the native echo server did not start");
    }

    let (connections, sizes): (&[usize], &[usize]) = if args.smoke {
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
    // for --max-connections at start-up (two per fibre stack), and the
    // mappings are bounded by vm.max_map_count; so for this figure the wsbox
    // servers are sized for the connections held plus 10 %.
    let scale_max = (scale_n + scale_n / 10).max(16).to_string();
    let scale_targets: Vec<Target> = targets
        .iter()
        .filter(|t| !t.name.starts_with("node"))
        .map(|t| {
            let mut t = t.clone();
            if let Some(i) = t.args.iter().position(|a| a == "--max-connections") {
                t.args[i + 1] = scale_max.clone();
            }
            t
        })
        .collect();
    let mut scale_rows = Vec::new();
    if scale_n > 0 {
        for t in &scale_targets {
            eprint!("bench: {scale_n} connections held → {} … ", t.name);
            let _ = std::io::stderr().flush();
            let row = scale_row(&loadgen, t, &logs, scale_n);
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
    for n in &notes {
        out.push_str(&format!("- {n}\n"));
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
    ));
    out.push_str("\n### Echo throughput and latency\n\n");
    out.push_str(&report::echo_tables(&cells, "native"));
    if !scale_rows.is_empty() {
        out.push_str(&format!(
            "\n### Connection scale\n\n{scale_n} concurrent connections (at most {} being opened at a time), one 32-byte echo on each, all held; \
             a fresh server process for each target; RSS from /proc/PID/status, idle = before the first connection.\n\n",
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
    print!("{out}");
    if let Some(path) = &args.out {
        std::fs::write(path, &out).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(())
}
