//! Counts an echo load's round trips: per connection, all of them and those
//! whose reply came within the measured window with their latency; and the
//! sum over the connections' tasks.

use anyhow::{bail, Result};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Round trips of one connection, or of all of them summed.
#[derive(Debug, Default)]
pub struct RoundTrips {
    /// Replies that arrived in `[from, until)`.
    pub counted: u64,
    /// Every reply, warmup and draining included.
    pub total: u64,
    /// The latency of each counted reply, in microseconds.
    pub latencies: Vec<u32>,
}

impl RoundTrips {
    /// The reply to a message sent at `sent` arrived now; it counts when now
    /// is in `[from, until)`.
    pub fn reply(&mut self, sent: Instant, (from, until): (Instant, Instant)) {
        self.total += 1;
        let now = Instant::now();
        if now >= from && now < until {
            self.counted += 1;
            let us = now.duration_since(sent).as_micros();
            self.latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }

    /// Sums what the connections' `tasks` return, failing with the first
    /// error or when they are not all done within `limit` (the server
    /// stopped answering); the latencies come back sorted.
    pub async fn join(
        mut tasks: JoinSet<Result<RoundTrips>>,
        limit: Duration,
    ) -> Result<RoundTrips> {
        let mut sum = RoundTrips::default();
        let joined = tokio::time::timeout(limit, async {
            while let Some(done) = tasks.join_next().await {
                let mut one = done??;
                sum.counted += one.counted;
                sum.total += one.total;
                sum.latencies.append(&mut one.latencies);
            }
            Ok::<_, anyhow::Error>(())
        })
        .await;
        match joined {
            Ok(result) => result?,
            Err(_) => bail!("the echo server stopped answering"),
        }
        sum.latencies.sort_unstable();
        Ok(sum)
    }
}
