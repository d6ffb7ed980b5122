//! Figure 4, instantiation and handler components: what one fresh handler
//! instance costs (in this process, with the wsbox library), with the
//! default and the pooling allocator, for every handler component; and each
//! handler's echo throughput through `wsbox serve`, next to the native
//! server in one cell.

use super::{echo, Args, Setup};
use crate::report::{HandlerRow, Measured};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the figure measured, and how.
#[derive(Default)]
pub(super) struct HandlerFigure {
    /// Instantiations one at a time per handler and allocator.
    pub(super) count: usize,
    /// Instances made and held at once.
    pub(super) held: usize,
    /// Connections of the echo cell.
    pub(super) connections: usize,
    /// One per handler component.
    pub(super) rows: Vec<HandlerRow>,
    /// The native server's figures in the echo cell.
    pub(super) native: Option<Measured>,
    /// The servers of the echo cell, as Markdown items.
    pub(super) servers: Vec<String>,
    /// The handler components left out, and why.
    pub(super) notes: Vec<String>,
}

/// Handler components by name.
type Handlers = Vec<(String, PathBuf)>;

/// The figure; empty with `--instantiations 0`.
pub(super) fn figure(args: &Args, setup: &Setup) -> Result<HandlerFigure> {
    let (count, held) = if args.smoke {
        (args.instantiations.min(20), args.held.min(10))
    } else {
        (args.instantiations, args.held)
    };
    let connections = if args.smoke { 10 } else { 100 };
    let mut figure = HandlerFigure {
        count,
        held,
        connections,
        ..HandlerFigure::default()
    };
    if count == 0 {
        return Ok(figure);
    }
    let (handlers, skipped) = handler_components(args, &setup.guest, &setup.target_dir)?;
    figure.notes = skipped;
    figure.rows = instantiate(&handlers, count, held)?;
    echo_cell(args, setup, &handlers, &mut figure);
    Ok(figure)
}

/// The handler components: the Rust echo first, then the Python and JS echo
/// handlers when they can be built, then `--handler NAME=PATH`; with notes
/// for those left out.
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

/// Every handler with each allocator: `count` instantiations one at a
/// time, `held` held.
fn instantiate(handlers: &Handlers, count: usize, held: usize) -> Result<Vec<HandlerRow>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for (name, path) in handlers {
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
                .block_on(crate::instantiate::measure(path, pooling, count, held))
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
        rows.push(row);
    }
    Ok(rows)
}

/// Echo through `wsbox serve` (default allocator), each handler after the
/// native server, in one cell.
fn echo_cell(args: &Args, setup: &Setup, handlers: &Handlers, figure: &mut HandlerFigure) {
    let mut targets = vec![setup.native_target("native")];
    for (name, path) in handlers {
        let mut a = setup.wsbox_args(&[]);
        *a.last_mut().expect("the guest is last") = path.display().to_string();
        // Sized for this cell: a large guest takes more mappings each.
        if let Some(i) = a.iter().position(|a| a == "--max-connections") {
            a[i + 1] = (2 * figure.connections).max(16).to_string();
        }
        targets.push(super::process::Target {
            name: format!("serve-{name}"),
            program: setup.wsbox.clone(),
            args: a,
        });
    }
    for t in &targets {
        let measured = match t.start(&setup.logs) {
            Ok(server) => {
                eprint!(
                    "bench: {} connections × 1 KiB → {} … ",
                    figure.connections, t.name
                );
                let _ = std::io::stderr().flush();
                let m = echo::cell(&setup.loadgen, &server, args, figure.connections, 1024);
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
        figure.servers.push(format!("{}: {}", t.name, t.describe()));
        match t.name.strip_prefix("serve-") {
            None => figure.native = Some(measured),
            Some(name) => {
                if let Some(row) = figure.rows.iter_mut().find(|r| r.name == name) {
                    row.echo = Some(measured);
                }
            }
        }
    }
}
