//! The report: the run's header, then each figure's section around its
//! tables ([`crate::report`]), in Markdown.

use super::compression::CompressionFigure;
use super::fanout::FanoutFigure;
use super::instantiation::HandlerFigure;
use super::outbound::OutboundFigure;
use super::process::{loadavg, Target};
use super::scale::ScaleFigure;
use super::Args;
use crate::report::{self as tables, Cell, Machine, SEQUENTIAL};
use std::fmt::Write;
use std::time::Instant;

/// Everything the run measured, and how.
pub(super) struct Run<'a> {
    pub(super) args: &'a Args,
    pub(super) started: Instant,
    /// `/proc/loadavg` before the first figure.
    pub(super) load_before: String,
    /// The echo figure's targets.
    pub(super) targets: &'a [Target],
    pub(super) notes: &'a [String],
    pub(super) cells: &'a [Cell],
    pub(super) scale: &'a ScaleFigure,
    pub(super) outbound: &'a OutboundFigure,
    pub(super) handlers: &'a HandlerFigure,
    pub(super) compression: &'a CompressionFigure,
    pub(super) fanout: &'a FanoutFigure,
}

/// The whole report.
pub(super) fn write(run: &Run) -> String {
    let mut out = header(run);
    out.push_str("\n### Targets\n\n");
    out.push_str(&tables::targets_section(
        run.cells,
        "native",
        if run.args.no_pooling {
            "wsbox"
        } else {
            "wsbox-pooling"
        },
        &run.scale.rows,
        &run.outbound.rows,
        &run.fanout.rows,
    ));
    if !run.cells.is_empty() {
        out.push_str("\n### Echo throughput and latency\n\n");
        out.push_str(&tables::echo_tables(run.cells, "native"));
    }
    if !run.scale.rows.is_empty() {
        out.push_str(&scale(run.scale));
    }
    if !run.outbound.rows.is_empty() {
        out.push_str(&outbound(run.args, run.outbound));
    }
    if !run.handlers.rows.is_empty() {
        out.push_str(&handlers(run.args, run.handlers));
    }
    if !run.compression.rows.is_empty() || !run.compression.memory.is_empty() {
        out.push_str(&compression(run.args, run.compression));
    }
    if !run.fanout.rows.is_empty() {
        out.push_str(&fanout(run.fanout));
    }
    out
}

/// The fan-out section.
fn fanout(figure: &FanoutFigure) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "\n### Fan-out\n\nOne publisher and {} receivers, {}-byte binary messages, by `loadgen fanout` (its own process, a \
         multi-threaded tokio runtime). The receivers connect first (64 at a time); the publisher then sends a probe every \
         {} ms until every receiver has seen one, so that all are subscribed. Then it publishes {} deliveries' worth of \
         messages per cell (messages = that ÷ receivers), after a tenth of that as warm-up, each carrying its sequence number \
         and its send time from the load generator's monotonic clock, keeping at most {} messages outstanding (a message is \
         done once every receiver got it). Deliveries/s = measured messages received by all receivers ÷ the time from \
         sending the first measured message to the last delivery; latency is publish-to-receive, over every measured \
         delivery. Each cell gets fresh server processes; server CPU is the user + system time of all of them (for two \
         nodes, both wsbox processes and nats-server) from the first warm-up message to the last delivery, divided by the \
         deliveries in that time, and loadgen CPU the same for the load generator. Lost = measured deliveries missing at \
         the end (the run stops once nothing has arrived for 10 s).\n\n",
        figure
            .receivers
            .iter()
            .map(|&r| tables::count_label(r))
            .collect::<Vec<_>>()
            .join(" and "),
        super::fanout::SIZE,
        crate::fanout::PROBE_EVERY.as_millis(),
        figure.deliveries,
        figure.window,
    );
    out.push_str(&tables::fanout_table(&figure.rows, "native"));
    out.push_str("\nServers for this figure (as started for their last cell):\n\n");
    for (_, items) in &figure.described {
        for item in items {
            let _ = writeln!(out, "- {item}");
        }
    }
    for n in &figure.notes {
        let _ = writeln!(out, "- {n}");
    }
    out
}

/// The compression section.
fn compression(args: &Args, figure: &CompressionFigure) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "\n### Compression (permessage-deflate)\n\nJSON-like text messages (arrays of records with random ids, names, words \
         and numbers, each message different) echoed over {} connections, {} in flight each, {} ms warm-up then {} ms measured, \
         by `loadgen deflate`, a client of its own that offers permessage-deflate (`client_max_window_bits`, context takeover), \
         compresses every message it sends with zlib level 6 and inflates the echoes; against a server without compression it \
         sends plain frames. Targets run one after the other at each size. Wire bytes are counted by the load generator after \
         the handshakes (frame headers and masks included), over all round trips of the cell. Server CPU is the server \
         process's user + system time over the cell divided by its round trips; the client's compression is not in it.\n\n",
        figure.connections,
        args.in_flight,
        args.warmup_ms(),
        args.duration_ms()
    );
    let baseline = figure
        .targets
        .iter()
        .find(|t| t.name.starts_with("node-ws-deflate"))
        .map_or("wsbox", |t| t.name.as_str());
    out.push_str(&tables::compression_table(&figure.rows, baseline));
    let _ = write!(
        out,
        "\nMemory per held connection: a fresh server per target; {} connections opened one after the other, each having \
         echoed one 16 KiB JSON-like message (so that each direction's compression state exists where it is kept), all \
         held; RSS from /proc/PID/status, idle = before the first connection, per connection = (held − idle) ÷ connections.\n\n",
        figure.held
    );
    out.push_str(&tables::memory_table(&figure.memory));
    out.push_str("\nServers for this figure:\n\n");
    let mut seen = Vec::new();
    for t in figure.targets.iter().chain(&figure.memory_targets) {
        if !seen.contains(&t.name) {
            let _ = writeln!(out, "- {}: {}", t.name, t.describe());
            seen.push(t.name.clone());
        }
    }
    for n in &figure.notes {
        let _ = writeln!(out, "- {n}");
    }
    out
}

/// The machine, its load, the command, how the echo figure was measured,
/// its targets, and the notes.
fn header(run: &Run) -> String {
    let args = run.args;
    let mut out = String::new();
    let _ = write!(
        out,
        "{}\nLoad average (1, 5, 15 min) at the start: {}; at the end: {}.\n\n",
        Machine::detect().line(),
        run.load_before,
        loadavg()
    );
    let command: Vec<String> = std::env::args().collect();
    let _ = write!(
        out,
        "Command: `{}`; the whole run took {:.0} s.\n\n",
        command.join(" "),
        run.started.elapsed().as_secs_f64()
    );
    if !args.no_echo {
        let _ = write!(
            out,
            "Echo: binary messages, {} in flight per connection, {} ms warm-up then {} ms measured per cell; \
             targets run one after the other within each cell; the load generator is its own process on the same cores. \
             Round-trip times are measured by the load generator. Server CPU is the server process's user + system time \
             over the whole cell divided by its round trips.\n\n",
            args.in_flight,
            args.warmup_ms(),
            args.duration_ms()
        );
        out.push_str("Targets:\n\n");
        for t in run.targets {
            let _ = writeln!(out, "- {}: {}", t.name, t.describe());
        }
    }
    if !args.no_echo || !run.notes.is_empty() {
        out.push_str(if args.no_echo { "Notes:\n\n" } else { "" });
        for n in run.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

/// The connection-scale section.
fn scale(figure: &ScaleFigure) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "\n### Connection scale\n\n{} concurrent connections (at most {} being opened at a time; rows marked \"{SEQUENTIAL}\" opened them one after the other), one 32-byte echo on each, all held; \
         a fresh server process for each target and row; RSS from /proc/PID/status, idle = before the first connection. \
         Accept-to-handler is what `wsbox serve --stats` measured, from `accept` returning to `handle` being called.\n\n",
        figure.connections,
        crate::load::CONNECT_CONCURRENCY
    );
    out.push_str(&tables::scale_table(&figure.rows));
    out.push_str("\nServers for this figure:\n\n");
    for t in &figure.targets {
        let _ = writeln!(out, "- {}: {}", t.name, t.describe());
    }
    if let Ok(max) = std::fs::read_to_string("/proc/sys/vm/max_map_count") {
        let _ = write!(out, "\n`vm.max_map_count` = {}.\n", max.trim());
    }
    out
}

/// The outbound section.
fn outbound(args: &Args, figure: &OutboundFigure) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "\n### Outbound\n\nA client guest under `wsbox run` (a subprocess, as a user runs it) against the native echo server, \
         versus a native tokio-tungstenite client (`loadgen client`, also a subprocess) running the same loop: one connection, \
         {} binary messages in flight (send {0}, then one more after each echo), a warm-up of a tenth of the count, then the count timed \
         by the client's own clock (the component's compile time is not in it). The clients alternate, round after round; \
         the table shows each client's median round by messages/s. Client CPU is the client process's user + system time \
         over the timed loop divided by its round trips.\n\n",
        args.in_flight
    );
    out.push_str(&tables::outbound_table(&figure.rows, "native"));
    out.push_str("\nClients:\n\n");
    out.push_str(&figure.described);
    out
}

/// The instantiation and handler components section.
fn handlers(args: &Args, figure: &HandlerFigure) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "\n### Instantiation and handler components\n\nWhat one fresh handler instance per connection costs, measured in this process \
         with the wsbox library (`wsbox::bench_support::HandlerPre`: the engine, linker and pre-instantiated component \
         `wsbox serve` uses; store + instance, as before `upgrade`), with the default allocator and with the pooling allocator: \
         after {} untimed, {} instantiations one at a time (each dropped before the next; the drop timed apart), \
         then {} made and held at once (with pooling, fresh slots). Compile is reading and compiling the component.\n\n",
        10, figure.count, figure.held
    );
    out.push_str(&tables::instantiation_table(&figure.rows));
    let _ = write!(
        out,
        "\nEach handler component next to the Rust `echo`: size on disk, compile time, instantiation p50 (from the table above) \
         and echo throughput at 1 KiB × {} connections ({} in flight each, same warm-up and duration as above) \
         through `wsbox serve` with the default allocator, measured one after the other with the native server first.\n\n",
        figure.connections, args.in_flight
    );
    out.push_str(&tables::handlers_table(
        &figure.rows,
        figure.native.as_ref(),
    ));
    out.push_str("\nServers for this figure:\n\n");
    for d in &figure.servers {
        let _ = writeln!(out, "- {d}");
    }
    for n in &figure.notes {
        let _ = writeln!(out, "- {n}");
    }
    out
}
