//! The instantiation figure: what one fresh handler instance per connection
//! costs, measured in-process with the wsbox library
//! ([`wsbox::bench_support::HandlerPre`]: the engine, linker and
//! pre-instantiated component `wsbox serve` uses), with the default
//! allocator and with the pooling allocator.
//!
//! Two ways, because the pooling allocator reuses a slot that still has the
//! component's memory image mapped when instances come and go one at a time,
//! while a server holding many connections takes fresh slots:
//!
//! - *one at a time*: instantiate, then drop, `count` times (the drop, which
//!   returns a pooling slot or unmaps the memory, is timed separately);
//! - *held*: `held` instances made one after the other and all kept alive.

use anyhow::{Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};
use wsbox::bench_support::HandlerPre;

/// Instantiations done, and not counted, before measuring.
const WARMUP: usize = 10;

/// What [`measure`] measured, times in nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Instantiation {
    /// Reading and compiling the component.
    pub compile: Duration,
    /// Instantiations one at a time.
    pub count: usize,
    /// One at a time: store + instance, median.
    pub p50_ns: u32,
    /// One at a time: 99th percentile.
    pub p99_ns: u32,
    /// One at a time: mean.
    pub mean_ns: f64,
    /// One at a time: dropping the instance and its store, mean.
    pub drop_mean_ns: f64,
    /// Instances made and all kept alive.
    pub held: usize,
    /// Held: median.
    pub held_p50_ns: u32,
    /// Held: 99th percentile.
    pub held_p99_ns: u32,
    /// Held: mean.
    pub held_mean_ns: f64,
}

fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

fn mean(values: &[u32]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64
    }
}

/// Compiles the handler at `path` as `wsbox serve` would (`pooling`: with
/// the pooling allocator, sized for its default `--max-connections`, or
/// `held` + 16 if more), then times
/// `count` instantiations one at a time and `held` kept alive.
pub async fn measure(
    path: &Path,
    pooling: bool,
    count: usize,
    held: usize,
) -> Result<Instantiation> {
    let config = wsbox::ServeConfig {
        pooling,
        // Sized as `wsbox serve` sizes it by default, or for `held` if more.
        max_connections: (held + 16).max(wsbox::ServeConfig::default().max_connections),
        ..wsbox::ServeConfig::default()
    };
    let pre = HandlerPre::new(path, &config).with_context(|| format!("{}", path.display()))?;
    for _ in 0..WARMUP {
        drop(pre.instantiate().await?);
    }
    let mut times = Vec::with_capacity(count);
    let mut drops = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        let instance = pre.instantiate().await?;
        let made = start.elapsed();
        let start = Instant::now();
        drop(instance);
        drops.push(nanos(start.elapsed()));
        times.push(nanos(made));
    }
    let mut live = Vec::with_capacity(held);
    let mut held_times = Vec::with_capacity(held);
    for _ in 0..held {
        let start = Instant::now();
        live.push(pre.instantiate().await?);
        held_times.push(nanos(start.elapsed()));
    }
    drop(live);
    let (mean_ns, drop_mean_ns, held_mean_ns) = (mean(&times), mean(&drops), mean(&held_times));
    times.sort_unstable();
    held_times.sort_unstable();
    Ok(Instantiation {
        compile: pre.compile_time(),
        count,
        p50_ns: crate::percentile(&times, 0.50),
        p99_ns: crate::percentile(&times, 0.99),
        mean_ns,
        drop_mean_ns,
        held,
        held_p50_ns: crate::percentile(&held_times, 0.50),
        held_p99_ns: crate::percentile(&held_times, 0.99),
        held_mean_ns,
    })
}
