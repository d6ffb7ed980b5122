//! The wsbox benchmark: a load generator and native echo and broadcast
//! servers to compare `wsbox serve` against (issues 5 and 13).
//!
//! The binaries are thin wrappers over this library, so that `cargo test`
//! can run the same code in-process with tiny sizes (`tests/smoke.rs`):
//!
//! - `native-echo`: [`native::serve`], a tokio-tungstenite echo server
//!   written as a user would write it;
//! - `native-broadcast`: [`broadcast::serve`], the same for fan-out (a
//!   `tokio::sync::broadcast` channel, a task per receiver);
//! - `loadgen`: [`load::run`] (echo throughput and latency),
//!   [`scale::run`] (many concurrent connections), [`client::run`] (the
//!   native outbound client), [`deflate::run`] and [`deflate::hold`]
//!   (the same with permessage-deflate) and [`fanout::run`] (one
//!   publisher, many receivers), in a process of their own;
//! - `bench`: [`figures::run`], the driver, which starts the servers and the
//!   load generator as subprocesses, runs each figure and prints the
//!   Markdown tables ([`report`]); it measures instantiation in-process
//!   ([`instantiate`]) and starts `nats-server` for the fan-out figure's
//!   two nodes ([`nats`]).

#![warn(missing_docs)]

pub mod broadcast;
pub mod charts;
pub mod client;
pub mod deflate;
pub mod fanout;
pub mod figures;
pub mod instantiate;
pub mod load;
pub mod native;
pub mod nats;
pub mod report;
pub mod round_trips;
pub mod scale;

/// `count` per second over `seconds`; 0 for no time at all.
pub fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// The value of `key=value` in a result line written by a `to_line`.
pub fn line_field<'a>(line: &'a str, key: &str) -> anyhow::Result<&'a str> {
    use anyhow::Context;
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .with_context(|| format!("no {key}= in {line:?}"))
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit, so that
/// one process can hold thousands of connections. Returns the new soft
/// limit.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid `rlimit` with cur <= max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// The value at quantile `q` (0..=1) of `sorted`, by nearest rank; 0 when
/// empty.
pub fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
