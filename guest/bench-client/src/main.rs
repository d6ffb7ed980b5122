//! `bench-client URL SIZE COUNT WINDOW [WARMUP]`: the outbound figure of the
//! benchmark (issue 5, `tests/bench`). Connects to an echo server, keeps
//! WINDOW binary messages of SIZE bytes in flight (send WINDOW, then one more
//! after each echo) for WARMUP round trips (default: COUNT / 10), prints
//! `start`, then does COUNT round trips timed with its own clock and prints
//! one line:
//!
//! `messages=N seconds=S per_second=R p50_us=P p99_us=Q`
//!
//! then closes with 1000. The native client it is compared with
//! (`tests/bench/src/client.rs`) runs the same loop.

use std::collections::VecDeque;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use wsbox_guest::{CloseCode, Incoming, Message, WebSocket};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench-client URL SIZE COUNT WINDOW [WARMUP]";
    let number = |i: usize| -> Result<usize, String> {
        args.get(i)
            .ok_or(usage)?
            .parse()
            .map_err(|e| format!("argument {}: {e}", i + 1))
    };
    let url = args.first().ok_or(usage)?;
    let (size, count, window) = (number(1)?, number(2)?, number(3)?);
    let warmup = if args.len() > 4 {
        number(4)?
    } else {
        count / 10
    };
    if count == 0 || window == 0 {
        return Err("COUNT and WINDOW must be at least 1".into());
    }

    let ws = WebSocket::connect(url).map_err(|e| format!("connect: {e}"))?;
    let message = Message::Binary((0..size).map(|i| (i % 251) as u8).collect());
    let mut latencies = Vec::with_capacity(count);
    echo(&ws, &message, warmup, window, &mut Vec::new())?;
    println!("start");
    let _ = std::io::stdout().flush();
    let started = Instant::now();
    echo(&ws, &message, count, window, &mut latencies)?;
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    println!(
        "messages={count} seconds={seconds:.6} per_second={:.1} p50_us={} p99_us={}",
        count as f64 / seconds,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );
    let _ = std::io::stdout().flush();
    ws.close(CloseCode::Normal, "done")
        .map_err(|e| format!("close: {e}"))
}

/// `count` round trips with `window` messages in flight; pushes each round
/// trip's time in µs onto `latencies`. Echoes come back in order, so the
/// send times queue up.
fn echo(
    ws: &WebSocket,
    message: &Message,
    count: usize,
    window: usize,
    latencies: &mut Vec<u32>,
) -> Result<(), String> {
    let size = match message {
        Message::Binary(data) => data.len(),
        Message::Text(text) => text.len(),
    };
    let mut sent_at = VecDeque::with_capacity(window);
    let mut sent = 0;
    while sent < count.min(window) {
        sent_at.push_back(Instant::now());
        ws.send(message).map_err(|e| format!("send: {e}"))?;
        sent += 1;
    }
    for _ in 0..count {
        let reply = match ws.receive().map_err(|e| format!("receive: {e}"))? {
            Incoming::Message(Message::Binary(data)) => data.len(),
            Incoming::Message(Message::Text(text)) => text.len(),
            Incoming::Close(status) => return Err(format!("the server closed: {status}")),
        };
        let now = Instant::now();
        if reply != size {
            return Err(format!("echo of {reply} bytes for {size}"));
        }
        if let Some(at) = sent_at.pop_front() {
            latencies.push(u32::try_from(now.duration_since(at).as_micros()).unwrap_or(u32::MAX));
        }
        if sent < count {
            sent_at.push_back(Instant::now());
            ws.send(message).map_err(|e| format!("send: {e}"))?;
            sent += 1;
        }
    }
    Ok(())
}

/// The value at quantile `q` of `sorted`, by nearest rank (as the bench
/// crate's `percentile`); 0 when empty.
fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
