//! A deflate bomb (a 16 GiB stream of zeros, compressed about a thousandfold and sent as it is made) gets 1009 and `message-too-big` in both roles, with the process's memory growing by a bounded amount: inflation stops at the 16 MiB message limit, in bounded steps.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wsbox::{Config, DeflateConfig, ServeConfig};
use wsbox_tests::raw::{self, RawServer};
use wsbox_tests::{allow, probe_with, serve, within};

/// The bomb's inflated size.
const BOMB: u64 = 16 << 30;
/// Zeros compressed into each frame.
const PER_FRAME: u64 = 64 << 20;
const MIB: usize = 1 << 20;

/// This process's resident memory, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// The highest resident memory seen while it runs, sampled every 2 ms.
struct PeakRss {
    peak: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    fn start() -> PeakRss {
        let peak = Arc::new(AtomicUsize::new(rss()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        PeakRss {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.peak.load(Ordering::Relaxed).max(rss())
    }
}

/// Makes the bomb a frame at a time: each frame's payload is the raw
/// deflate stream of the next [`PER_FRAME`] zeros; the first frame has
/// RSV1, the last one FIN. Nothing but one frame is ever held.
struct Bomb {
    stream: flate2::Compress,
    zeros: Vec<u8>,
    made: u64,
    mask: Option<[u8; 4]>,
}

impl Bomb {
    fn new(mask: Option<[u8; 4]>) -> Bomb {
        Bomb {
            stream: flate2::Compress::new(flate2::Compression::best(), false),
            zeros: vec![0; MIB],
            made: 0,
            mask,
        }
    }

    fn next_frame(&mut self) -> Option<Vec<u8>> {
        if self.made == BOMB {
            return None;
        }
        let first = self.made == 0;
        let mut payload = Vec::with_capacity((PER_FRAME / 1000) as usize);
        for _ in 0..PER_FRAME / MIB as u64 {
            payload.extend(raw_deflate(&mut self.stream, &self.zeros, false));
        }
        self.made += PER_FRAME;
        let fin = self.made == BOMB;
        if fin {
            payload.extend(raw_deflate(&mut self.stream, &[], true));
            payload.truncate(payload.len() - 4);
        }
        let opcode: u8 = if first { 0x42 } else { 0x00 };
        Some(raw::frame(
            opcode | if fin { 0x80 } else { 0 },
            &payload,
            self.mask,
        ))
    }
}

/// Compresses `data` without flushing, or sync-flushes (`flush`).
fn raw_deflate(stream: &mut flate2::Compress, data: &[u8], flush: bool) -> Vec<u8> {
    let mode = if flush {
        flate2::FlushCompress::Sync
    } else {
        flate2::FlushCompress::None
    };
    let mut out = Vec::with_capacity(4096);
    let mut used = 0;
    loop {
        let before = stream.total_in();
        stream.compress_vec(&data[used..], &mut out, mode).unwrap();
        used += (stream.total_in() - before) as usize;
        if used == data.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

/// Sends the bomb on `tcp` until the other side's close frame arrives (or
/// TCP ends). Returns its close code and the zeros sent, compressed.
async fn detonate(tcp: TcpStream, mask: Option<[u8; 4]>) -> (Option<Option<u16>>, u64) {
    let (mut read, mut write) = tcp.into_split();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut bomb = Bomb::new(mask);
            let mut sent = 0;
            while !done.load(Ordering::Relaxed) {
                let Some(frame) = tokio::task::block_in_place(|| bomb.next_frame()) else {
                    break;
                };
                if write.write_all(&frame).await.is_err() {
                    break;
                }
                sent += PER_FRAME;
            }
            (sent, write)
        })
    };
    let code = {
        let mut tcp = read;
        let mut buf = Vec::new();
        let mut code = None;
        loop {
            match raw::read_frame(&mut tcp, &mut buf).await {
                Some(frame) if frame.opcode() == 0x8 => {
                    let p = frame.payload;
                    code = Some((p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])));
                    break;
                }
                Some(_) => continue,
                None => break,
            }
        }
        read = tcp;
        code
    };
    done.store(true, Ordering::Relaxed);
    let (sent, write) = within("the bomb's writer to stop", writer).await.unwrap();
    drop((read, write));
    (code, sent)
}

fn deflate_serve() -> ServeConfig {
    let mut config = ServeConfig::default();
    config.websocket.deflate = DeflateConfig::enabled();
    config
}

/// One test, so that nothing else in this process moves its memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deflate_bomb_gets_1009_in_both_roles_in_bounded_memory() {
    // Compile the components first, so that their code is in the baseline.
    let served = serve("echo", deflate_serve()).await;
    let warm = RawServer::start(|mut tcp| async move {
        raw::accept(&mut tcp).await;
        Some(tcp)
    })
    .await;
    let url = format!("ws://127.0.0.1:{}/", warm.port);
    probe_with(allow(warm.port), &url, &["close:1000"]).await;

    // Server role: the echo handler reads whole messages, so the host
    // gathers up to the 16 MiB limit for it before failing.
    let before = rss();
    let peak = PeakRss::start();
    let (tcp, head) = raw::connect_with(
        served.port,
        "/",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    )
    .await;
    assert!(head.contains("permessage-deflate"), "{head}");
    tcp.set_nodelay(true).unwrap();
    let (code, sent) = within(
        "the server's answer to the bomb",
        detonate(tcp, Some([1, 2, 3, 4])),
    )
    .await;
    let grown = peak.stop().saturating_sub(before);
    eprintln!("server role: {sent} bytes of zeros sent, peak growth {grown} bytes");
    assert_eq!(code, Some(Some(1009)));
    assert!(
        grown < 40 * MIB,
        "the bomb grew the server by {grown} bytes; the message limit is 16 MiB"
    );
    assert!(sent < BOMB, "the whole bomb went in: {sent} bytes");

    // Client role, twice: a guest that reads whole messages, then one that
    // streams them with receive-fragment and never holds more than a piece.
    for (step, bound) in [("recv", 40 * MIB), ("recv-all-frags:65536", 4 * MIB)] {
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
        let server = RawServer::start(move |mut tcp| async move {
            raw::accept_with(&mut tcp, "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
            tcp.set_nodelay(true).unwrap();
            let _ = answer_tx.send(detonate(tcp, None).await);
            None
        })
        .await;
        let config = Config {
            deflate: DeflateConfig::enabled(),
            ..allow(server.port)
        };
        let url = format!("ws://127.0.0.1:{}/", server.port);
        let before = rss();
        let peak = PeakRss::start();
        let probe = probe_with(config, &url, &[step]).await;
        let (code, sent) = within("the bomb", answer_rx).await.unwrap();
        let grown = peak.stop().saturating_sub(before);
        eprintln!("client role, {step}: {sent} bytes of zeros sent, peak growth {grown} bytes");
        assert_eq!(probe.result(step), "err(message-too-big)", "{probe:#?}");
        assert_eq!(code, Some(Some(1009)), "{step}");
        assert!(
            grown < bound,
            "{step}: the bomb grew the client by {grown} bytes (bound {bound})"
        );
        assert!(sent < BOMB);
    }
    assert_eq!(wsbox::panics(), 0);
}
