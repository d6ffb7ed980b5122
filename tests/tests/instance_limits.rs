//! `--max-memory` bounds a whole instance: a component whose core instances each grow a memory of their own, or that grows a funcref table in a loop, traps at the limit for all its memories and tables together, the process's resident memory stays bounded, and a guest running beside it is unaffected.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tungstenite::Message;
use wsbox::{Config, Exit, InstanceLimits};
use wsbox_tests::{allow, component_at, run_component, run_guest, wat_component, RustPeer, Seen};

const LIMIT: usize = 64 << 20;

/// The tests measure the process's resident memory: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The resident memory of this process, from `/proc/self/statm`.
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// The most resident memory seen, sampled every 2 ms on a thread of its own
/// until [`Peak::stop`].
struct Peak {
    most: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<()>,
}

impl Peak {
    fn start() -> Peak {
        let most = Arc::new(AtomicUsize::new(resident()));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (most, done) = (most.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    most.fetch_max(resident(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Peak {
            most,
            done,
            sampler,
        }
    }

    fn stop(self) -> usize {
        self.done.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap();
        self.most.load(Ordering::Relaxed)
    }
}

/// Runs `tests/wat/NAME.wat` under a 64 MiB limit while `echo-client` runs
/// beside it against an echo peer; checks that the first traps at the
/// memory limit, the second succeeds, and resident memory grows by less
/// than twice the limit.
async fn traps_at_the_limit_beside_a_healthy_guest(name: &str) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let path = wat_component(name);
    // Compiled before the baseline, as compiling takes memory too.
    component_at(&path);
    wsbox_tests::component("echo-client");
    let mut peer = RustPeer::echo().await;
    let url = peer.url();
    let config = (
        Config::default(),
        InstanceLimits {
            max_memory: LIMIT,
            ..InstanceLimits::default()
        },
    );
    let args = [url.as_str(), "still here"];
    let baseline = resident();
    let peak = Peak::start();
    let (hog, healthy) = tokio::join!(
        run_component(&path, name, config, &[]),
        run_guest("echo-client", allow(peer.port), &args),
    );
    let grew = peak.stop().saturating_sub(baseline);
    eprintln!("{name}: resident memory grew by {} MiB at most", grew >> 20);
    match &hog.exit {
        Exit::Trap(message) => assert!(message.contains("memory limit"), "{message}"),
        other => panic!("{name} was not stopped: {other:?}"),
    }
    assert_eq!(healthy.exit, Exit::Code(0), "{}", healthy.stderr);
    assert!(
        healthy.stdout.contains("reply: still here"),
        "{}",
        healthy.stdout
    );
    assert_eq!(
        peer.next().await,
        Seen::Message(Message::text("still here"))
    );
    // The guest asked for 320 MiB or more.
    assert!(
        grew < 2 * LIMIT,
        "{name}: resident memory grew by {} MiB under a limit of {} MiB",
        grew >> 20,
        LIMIT >> 20
    );
}

#[tokio::test]
async fn six_memories_of_60_mib_trap_at_a_64_mib_limit_for_the_instance() {
    traps_at_the_limit_beside_a_healthy_guest("memories").await;
}

#[tokio::test]
async fn a_table_grown_in_a_loop_traps_at_the_memory_limit() {
    traps_at_the_limit_beside_a_healthy_guest("table").await;
}
