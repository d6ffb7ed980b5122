//! What `wsbox serve` measures about itself: how long a connection waits
//! from `accept` (and from its upgrade request) until its handler runs, and
//! how long instantiation takes.

use serde::{Deserialize, Serialize};
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
///
/// With serde it is `{"count":N,"p50_us":N,"p99_us":N,"max_us":N}`, the
/// durations in whole microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many were recorded (all of them, kept or not).
    pub count: usize,
    /// The median.
    #[serde(rename = "p50_us", with = "micros")]
    pub p50: Duration,
    /// The 99th percentile.
    #[serde(rename = "p99_us", with = "micros")]
    pub p99: Duration,
    /// The largest.
    #[serde(rename = "max_us", with = "micros")]
    pub max: Duration,
}

/// A [`Duration`] as a number of whole microseconds.
mod micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
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
///
/// With serde it is `{"accept_to_handle":P,"request_to_handle":P,"instantiate":P,"panics":N}`,
/// each `P` a [`Percentiles`] or `null` before the first sample; `wsbox serve
/// --stats` prints it at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// How many of the host's tasks have panicked in this process
    /// ([`panics`](crate::panics)): each is a wsbox bug, so it should be 0.
    #[serde(default)]
    pub panics: u64,
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

    #[test]
    fn serializes_as_whole_microseconds_and_back() {
        let accept = Percentiles {
            count: 3,
            p50: Duration::from_nanos(5_900),
            p99: Duration::from_micros(7),
            max: Duration::from_micros(9),
        };
        let stats = ServeStats {
            accept_to_handle: Some(accept),
            request_to_handle: None,
            instantiate: None,
            panics: 2,
        };
        let json = serde_json::to_string(&stats).unwrap();
        assert_eq!(
            json,
            r#"{"accept_to_handle":{"count":3,"p50_us":5,"p99_us":7,"max_us":9},"request_to_handle":null,"instantiate":null,"panics":2}"#
        );
        let back: ServeStats = serde_json::from_str(&json).unwrap();
        let whole = Percentiles {
            p50: Duration::from_micros(5),
            ..accept
        };
        assert_eq!(back.accept_to_handle, Some(whole));
        assert_eq!((back.request_to_handle, back.instantiate), (None, None));
        assert_eq!(back.panics, 2);
    }
}
