//! What `wsbox serve` measures about itself: how long a connection waits
//! from `accept` (and from its upgrade request) until its handler runs, and
//! how long instantiation takes.

use std::sync::Mutex;
use std::time::Duration;

/// The most samples a [`Latencies`] keeps; later ones are counted but not
/// kept, so a long-running server's memory stays bounded (4 MiB each).
const MAX_SAMPLES: usize = 1 << 20;

/// Durations recorded by many connections at once.
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    samples: Mutex<(Vec<u32>, usize)>,
}

impl Latencies {
    /// Records one duration (whole microseconds).
    pub(crate) fn record(&self, elapsed: Duration) {
        let micros = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let (kept, count) = &mut *samples;
        *count += 1;
        if kept.len() < MAX_SAMPLES {
            kept.push(micros);
        }
    }

    /// Percentiles of what was recorded so far; `None` before the first.
    pub(crate) fn summary(&self) -> Option<Percentiles> {
        let (mut kept, count) = {
            let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            (samples.0.clone(), samples.1)
        };
        if kept.is_empty() {
            return None;
        }
        kept.sort_unstable();
        let at = |q: f64| {
            let i = ((kept.len() as f64 * q).ceil() as usize).clamp(1, kept.len()) - 1;
            Duration::from_micros(u64::from(kept[i]))
        };
        Some(Percentiles {
            count,
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

/// Percentiles of a latency, over the first million samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// How many were recorded (all of them, kept or not).
    pub count: usize,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The largest.
    pub max: Duration,
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50_us={} p99_us={} max_us={}",
            self.count,
            self.p50.as_micros(),
            self.p99.as_micros(),
            self.max.as_micros()
        )
    }
}

/// What a [`Server`](crate::Server) measured, from [`Server::stats`](crate::Server::stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeStats {
    /// From `accept` to the handler's `handle` being called: reading the
    /// upgrade request, instantiating, `upgrade`, writing the 101 answer.
    /// Only connections that reached `handle` count.
    pub accept_to_handle: Option<Percentiles>,
    /// The part of that after the upgrade request arrived whole: the part
    /// that does not wait for the client.
    pub request_to_handle: Option<Percentiles>,
    /// Making the connection's fresh instance from the pre-instantiated
    /// component.
    pub instantiate: Option<Percentiles>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let latencies = Latencies::default();
        assert_eq!(latencies.summary(), None);
        for micros in (1..=100).rev() {
            latencies.record(Duration::from_micros(micros));
        }
        let summary = latencies.summary().unwrap();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50, Duration::from_micros(50));
        assert_eq!(summary.p99, Duration::from_micros(99));
        assert_eq!(summary.max, Duration::from_micros(100));
    }
}
