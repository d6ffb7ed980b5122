//! The Markdown the benchmark prints: the machine, the echo table with one
//! row per cell and target, and the ratios against the native server; the
//! connection-scale, outbound, instantiation, compression and fan-out
//! tables; and issue 5's and issue 13's targets against what was measured
//! ([`targets_section`], [`fanout_targets`]).

use crate::client::ClientResult;
use crate::instantiate::Instantiation;
use crate::load::LoadResult;
use crate::scale::ScaleResult;
use std::fmt::Write;

mod compression;
mod fanout;
mod targets;

pub use compression::{compression_table, memory_table, CompressionRow, MemoryRow};
pub use fanout::{count_label, fanout_table, fanout_targets, FanoutRow};
pub use targets::{outbound_target, targets_section};

/// The machine the benchmark ran on.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Total memory, in MiB (`/proc/meminfo`).
    pub memory_mib: u64,
    /// The CPU model (`/proc/cpuinfo`), if known.
    pub cpu: String,
    /// The kernel release (`/proc/sys/kernel/osrelease`), if known.
    pub kernel: String,
}

impl Machine {
    /// Reads this machine's description.
    pub fn detect() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let memory_kib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                Some(
                    l.strip_prefix("model name")?
                        .split_once(':')?
                        .1
                        .trim()
                        .to_string(),
                )
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_mib: memory_kib / 1024,
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        }
    }

    /// One Markdown line.
    pub fn line(&self) -> String {
        format!(
            "Machine: {} cores ({}), {} MiB memory, Linux {}.",
            self.cores, self.cpu, self.memory_mib, self.kernel
        )
    }
}

/// One target's figures in one cell.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The target's name, e.g. `wsbox`, `native`.
    pub target: String,
    /// The load generator's result, or why there is none.
    pub result: Result<LoadResult, String>,
    /// The server's CPU time (user + system) per round trip over the whole
    /// run, in µs, when it could be read.
    pub server_cpu_us: Option<f64>,
}

/// One cell of the matrix: connections × size, every target.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Concurrent connections.
    pub connections: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// Each target's figures, in the order the targets were given.
    pub measured: Vec<Measured>,
}

/// `32 B`, `1 KiB`, `64 KiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn per_second(m: Option<&Measured>) -> Option<f64> {
    m?.result.as_ref().ok().map(LoadResult::per_second)
}

/// The echo table (one row per cell and target) and the ratio table (each
/// target's messages/s divided by `baseline`'s).
pub fn echo_tables(cells: &[Cell], baseline: &str) -> String {
    let mut out = String::new();
    out.push_str("| connections | size | target | messages/s | p50 µs | p99 µs | server CPU µs/msg | vs native |\n");
    out.push_str("|---:|---:|---|---:|---:|---:|---:|---:|\n");
    for cell in cells {
        let base = per_second(cell.measured.iter().find(|m| m.target == baseline));
        for m in &cell.measured {
            let cpu = m
                .server_cpu_us
                .map_or("–".to_string(), |c| format!("{c:.1}"));
            match &m.result {
                Ok(r) => {
                    let ratio = base
                        .filter(|b| *b > 0.0)
                        .map_or("–".to_string(), |b| format!("{:.2}", r.per_second() / b));
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {:.0} | {} | {} | {cpu} | {ratio} |",
                        cell.connections,
                        size_label(cell.size),
                        m.target,
                        r.per_second(),
                        r.p50_us,
                        r.p99_us
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | failed: {} | | | | |",
                        cell.connections,
                        size_label(cell.size),
                        m.target,
                        table_cell(e)
                    );
                }
            }
        }
    }
    let targets: Vec<&str> = cells
        .first()
        .map(|c| c.measured.iter().map(|m| m.target.as_str()).collect())
        .unwrap_or_default();
    let others: Vec<&str> = targets.into_iter().filter(|t| *t != baseline).collect();
    out.push_str("\nThroughput ratios (messages/s of the target ÷ messages/s of ");
    out.push_str(baseline);
    out.push_str("):\n\n| connections | size |");
    for t in &others {
        let _ = write!(out, " {t} / {baseline} |");
    }
    out.push_str("\n|---:|---:|");
    for _ in &others {
        out.push_str("---:|");
    }
    out.push('\n');
    for cell in cells {
        let base = per_second(cell.measured.iter().find(|m| m.target == baseline));
        let _ = write!(out, "| {} | {} |", cell.connections, size_label(cell.size));
        for t in &others {
            let value = per_second(cell.measured.iter().find(|m| m.target == *t));
            match (value, base) {
                (Some(v), Some(b)) if b > 0.0 => {
                    let _ = write!(out, " {:.2} |", v / b);
                }
                _ => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out
}

/// Appended to a scale row's target when its connections were opened one
/// after the other.
pub const SEQUENTIAL: &str = ", one at a time";

/// One target's connection-scale figures.
#[derive(Clone, Debug)]
pub struct ScaleRow {
    /// The target's name.
    pub target: String,
    /// What the load generator measured, or why it failed.
    pub result: Result<ScaleResult, String>,
    /// The server's resident memory when idle, before the connections, KiB.
    pub idle_rss_kib: Option<u64>,
    /// The server's resident memory with every connection held, KiB.
    pub held_rss_kib: Option<u64>,
    /// The server's memory mappings (`/proc/PID/maps` lines) with every
    /// connection held; `vm.max_map_count` bounds them.
    pub held_maps: Option<usize>,
    /// Accept-to-handler-running p50 and p99 in µs, as the server measured
    /// it (`wsbox serve --stats`); `None` for servers that do not say.
    pub accept_to_handle_us: Option<(u64, u64)>,
    /// The same from the upgrade request's arrival (`request-to-handle`).
    pub request_to_handle_us: Option<(u64, u64)>,
    /// Instantiation p50 and p99 in µs, as the server measured it.
    pub instantiate_us: Option<(u64, u64)>,
    /// Anything else to know, e.g. that the server process died.
    pub note: Option<String>,
}

/// The connection-scale table.
pub fn scale_table(rows: &[ScaleRow]) -> String {
    let mut out = String::new();
    out.push_str("| target | held | failed | time to open all | handshake p50 / p99 µs | connect-to-first-echo p50 / p99 µs | server: accept-to-handler / request-to-handler / instantiate, p50 / p99 µs | idle RSS | RSS held | RSS per connection | mappings held |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        match &row.result {
            Ok(r) => {
                let per = match (row.idle_rss_kib, row.held_rss_kib) {
                    (Some(idle), Some(held)) if r.connections > 0 => format!(
                        "{:.1} KiB",
                        held.saturating_sub(idle) as f64 / r.connections as f64
                    ),
                    _ => "–".into(),
                };
                let mib = |k: Option<u64>| {
                    k.map_or("–".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
                };
                let _ =
                    writeln!(
                    out,
                    "| {} | {} | {} | {:.2} s | {} / {} | {} / {} | {} | {} | {} | {per} | {} |",
                    match &row.note {
                        Some(note) => format!("{} ({})", row.target, table_cell(note)),
                        None => row.target.clone(),
                    },
                    r.connections,
                    r.failed,
                    r.open_seconds,
                    r.handshake_p50_us,
                    r.handshake_p99_us,
                    r.first_echo_p50_us,
                    r.first_echo_p99_us,
                    match row.accept_to_handle_us {
                        None => "–".into(),
                        Some(accept) => [Some(accept), row.request_to_handle_us, row.instantiate_us]
                            .iter()
                            .map(|l| l.map_or("–".into(), |(p50, p99)| format!("{p50} / {p99}")))
                            .collect::<Vec<_>>()
                            .join("; "),
                    },
                    mib(row.idle_rss_kib),
                    mib(row.held_rss_kib),
                    row.held_maps.map_or("–".into(), |m| m.to_string())
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "| {} | failed: {} | | | | | | | | | |",
                    row.target,
                    table_cell(e)
                );
            }
        }
    }
    out
}

/// One client's outbound figures at one message size.
#[derive(Clone, Debug)]
pub struct OutboundRow {
    /// Payload bytes per message.
    pub size: usize,
    /// Messages in flight.
    pub window: usize,
    /// The client's name, e.g. `wsbox`, `native`.
    pub client: String,
    /// The median round (by messages/s) of this client's runs, or why there
    /// is none.
    pub result: Result<ClientResult, String>,
    /// The client process's CPU time (user + system) per round trip over
    /// the timed loop of that round, in µs, when it could be read.
    pub client_cpu_us: Option<f64>,
    /// How many rounds were run.
    pub rounds: usize,
}

fn client_per_second(rows: &[OutboundRow], size: usize, client: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.size == size && r.client == client)?
        .result
        .as_ref()
        .ok()
        .map(ClientResult::per_second)
}

/// The outbound table: one row per size and client, with the ratio to
/// `baseline`'s messages/s.
pub fn outbound_table(rows: &[OutboundRow], baseline: &str) -> String {
    let mut out = String::new();
    out.push_str("| size | in flight | client | rounds | messages/s | p50 µs | p99 µs | client CPU µs/msg | vs native |\n");
    out.push_str("|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let cpu = row
            .client_cpu_us
            .map_or("–".to_string(), |c| format!("{c:.1}"));
        match &row.result {
            Ok(r) => {
                let ratio = client_per_second(rows, row.size, baseline)
                    .filter(|b| *b > 0.0)
                    .map_or("–".to_string(), |b| format!("{:.2}", r.per_second() / b));
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.0} | {} | {} | {cpu} | {ratio} |",
                    size_label(row.size),
                    row.window,
                    row.client,
                    row.rounds,
                    r.per_second(),
                    r.p50_us,
                    r.p99_us
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | failed: {} | | | | |",
                    size_label(row.size),
                    row.window,
                    row.client,
                    row.rounds,
                    table_cell(e)
                );
            }
        }
    }
    out
}

/// One handler component's figures: size, compile and instantiation time,
/// echo throughput through `wsbox serve`.
#[derive(Clone, Debug)]
pub struct HandlerRow {
    /// The handler's name, e.g. `rust-echo`.
    pub name: String,
    /// The component file's size in bytes.
    pub size_bytes: Option<u64>,
    /// Instantiation with the default allocator.
    pub default: Result<Instantiation, String>,
    /// Instantiation with the pooling allocator.
    pub pooling: Result<Instantiation, String>,
    /// Echo through `wsbox serve` with this handler, when measured.
    pub echo: Option<Measured>,
}

fn micros(ns: impl Into<f64>) -> String {
    let us = ns.into() / 1000.0;
    if us >= 100.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.1}")
    }
}

/// The instantiation table: per handler and allocator, one at a time and
/// held.
pub fn instantiation_table(rows: &[HandlerRow]) -> String {
    let mut out = String::new();
    out.push_str("| handler | allocator | compile ms | one at a time: p50 / p99 / mean µs | drop mean µs | held: p50 / p99 / mean µs |\n");
    out.push_str("|---|---|---:|---:|---:|---:|\n");
    for row in rows {
        for (allocator, result) in [("default", &row.default), ("pooling", &row.pooling)] {
            match result {
                Ok(i) => {
                    let _ = writeln!(
                        out,
                        "| {} | {allocator} | {:.0} | {} / {} / {} (×{}) | {} | {} / {} / {} (×{}) |",
                        row.name,
                        i.compile.as_secs_f64() * 1000.0,
                        micros(i.p50_ns),
                        micros(i.p99_ns),
                        micros(i.mean_ns),
                        i.count,
                        micros(i.drop_mean_ns),
                        micros(i.held_p50_ns),
                        micros(i.held_p99_ns),
                        micros(i.held_mean_ns),
                        i.held
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        out,
                        "| {} | {allocator} | failed: {} | | | |",
                        row.name,
                        table_cell(e)
                    );
                }
            }
        }
    }
    out
}

/// The handlers side by side: size, compile time, instantiation p50 with
/// each allocator, echo throughput and its ratios to `native` (the native
/// server in the same cell) and to the first row's handler.
pub fn handlers_table(rows: &[HandlerRow], native: Option<&Measured>) -> String {
    let mut out = String::new();
    out.push_str("| handler | component size | compile ms | instantiate p50 µs, default / pooling | echo messages/s | p50 / p99 µs | server CPU µs/msg | vs native | vs first row |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let native = per_second(native).filter(|b| *b > 0.0);
    let first = per_second(rows.first().and_then(|r| r.echo.as_ref())).filter(|b| *b > 0.0);
    for row in rows {
        let size = row
            .size_bytes
            .map_or("–".into(), |b| format!("{:.1} KiB", b as f64 / 1024.0));
        let compile = match (&row.default, &row.pooling) {
            (Ok(i), _) | (_, Ok(i)) => format!("{:.0}", i.compile.as_secs_f64() * 1000.0),
            _ => "–".into(),
        };
        let p50 = |r: &Result<Instantiation, String>| {
            r.as_ref().map_or("failed".into(), |i| micros(i.p50_ns))
        };
        let (rate, lat, cpu, vs_native, vs_first) = match row.echo.as_ref().map(|m| (&m.result, m))
        {
            Some((Ok(r), m)) => {
                let ratio = |b: Option<f64>| {
                    b.map_or("–".into(), |b| format!("{:.2}", r.per_second() / b))
                };
                (
                    format!("{:.0}", r.per_second()),
                    format!("{} / {}", r.p50_us, r.p99_us),
                    m.server_cpu_us.map_or("–".into(), |c| format!("{c:.1}")),
                    ratio(native),
                    ratio(first),
                )
            }
            Some((Err(e), _)) => (
                format!("failed: {}", table_cell(e)),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ),
            None => ("–".into(), "–".into(), "–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {size} | {compile} | {} / {} | {rate} | {lat} | {cpu} | {vs_native} | {vs_first} |",
            row.name,
            p50(&row.default),
            p50(&row.pooling)
        );
    }
    out
}

/// `text` made safe for one Markdown table cell.
fn table_cell(text: &str) -> String {
    text.replace('|', "/").replace('\n', " ")
}
