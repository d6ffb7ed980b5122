//! Measures the memory compression state holds (tests only), with an allocator that counts per thread.
//!
//! `cargo test -p wsbox --lib deflate::memory -- --nocapture` prints the
//! table of bytes held per compressor and inflater.

use super::compress::tests::params;
use super::compress::Compressor;
use super::inflate::{Inflater, Step};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting each thread's live and peak bytes (tests
/// run on many threads; each measurement stays on one).
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call goes to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Runs `f`; returns what it left allocated and its peak, both above the
/// bytes live before.
fn measure<T>(f: impl FnOnce() -> T) -> (T, isize, isize) {
    let base = live();
    PEAK.with(|peak| peak.set(base));
    let value = f();
    (value, live() - base, PEAK.with(Cell::get) - base)
}

/// Bytes held by a compressor and an inflater after one message each, with
/// and without context takeover, and their peaks.
fn held(bits: u8, no_takeover: bool) -> [isize; 4] {
    let message = super::compress::tests::sample(1, 4096, 4096);
    let payload = Compressor::new(params(bits, true))
        .compress_message(&message)
        .unwrap();
    let mut out = vec![0u8; 8192];
    let (compressor, c_held, c_peak) = measure(|| {
        let mut c = Compressor::new(params(bits, no_takeover));
        drop(c.compress_message(&message).unwrap());
        c
    });
    let (inflater, i_held, i_peak) = measure(|| {
        let mut i = Inflater::new(params(bits, no_takeover));
        let p = i.inflate(&payload, true, &mut out).unwrap();
        assert_eq!((p.step, p.written), (Step::MessageEnd, message.len()));
        i
    });
    assert_eq!(compressor.holds_state(), c_held != 0);
    assert_eq!(inflater.holds_state(), i_held != 0);
    [c_held, i_held, c_peak, i_peak]
}

#[test]
fn state_per_connection() {
    println!("window bits | takeover: compressor, inflater held (peak) | no takeover: held (peak while busy)");
    for bits in 8..=15u8 {
        let [c, i, c_peak, i_peak] = held(bits, false);
        let [nc, ni, nc_peak, ni_peak] = held(bits, true);
        println!(
            "{bits:>2} | {:>4} KiB, {:>3} KiB ({:>4} KiB, {:>3} KiB) | {nc} B, {ni} B ({:>4} KiB, {:>3} KiB)",
            c >> 10,
            i >> 10,
            c_peak >> 10,
            i_peak >> 10,
            nc_peak >> 10,
            ni_peak >> 10
        );
        // Without takeover an idle connection holds nothing.
        assert_eq!((nc, ni), (0, 0), "{bits} bits");
        // With it, the compressor holds 4 bytes per window byte (zlib runs 8
        // as 9) and fixed tables; the inflater always has a 32 KiB window,
        // whatever the bits.
        let window = 1isize << bits.max(9);
        assert!(
            c >= 4 * window && c <= 4 * window + (256 << 10),
            "{bits} bits: compressor {c}"
        );
        assert!(
            (1 << 15..=64 << 10).contains(&i),
            "{bits} bits: inflater {i}"
        );
    }
}

/// 1 GiB of zeros, compressed to about a megabyte, inflates in 64 KiB steps
/// with memory bounded by the step and the window; the caller's size limit
/// stops it early just as well.
#[test]
fn a_bomb_inflates_in_bounded_memory() {
    const GIB: u64 = 1 << 30;
    let zeros = vec![0u8; 1 << 20];
    let mut bomb = Vec::new();
    let mut c = Compressor::new(params(15, true));
    for n in 0..1024 {
        c.compress(&zeros, n == 1023, &mut bomb).unwrap();
    }
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    // Fed in frames of 16 KiB, as a peer would send them.
    let frames: Vec<&[u8]> = bomb.chunks(16 << 10).collect();
    let inflate = |limit: u64| {
        let mut step = vec![0u8; 64 << 10];
        let mut i = Inflater::new(params(15, true));
        for (n, frame) in frames.iter().enumerate() {
            let mut at = 0;
            loop {
                let p = i
                    .inflate(&frame[at..], n + 1 == frames.len(), &mut step)
                    .unwrap();
                at += p.consumed;
                assert!(step[..p.written].iter().all(|&b| b == 0));
                if i.message_len() > limit {
                    return i.message_len();
                }
                match p.step {
                    Step::OutputFull => {}
                    Step::NeedsInput => break,
                    Step::MessageEnd => return i.message_len(),
                }
            }
        }
        unreachable!()
    };
    let (total, held, peak) = measure(|| inflate(u64::MAX));
    assert_eq!(total, GIB);
    assert_eq!(held, 0);
    // The step, and the inflater's 32 KiB window and state.
    let bound = (64 << 10) + (64 << 10);
    assert!(peak < bound, "peak {peak} bytes for a 64 KiB step");
    println!(
        "1 GiB bomb: {} KiB compressed, peak {} KiB while inflating in 64 KiB steps",
        bomb.len() >> 10,
        peak >> 10
    );
    // A 16 MiB limit stops it one step past the limit.
    let (stopped, _, peak) = measure(|| inflate(16 << 20));
    assert!(
        stopped > 16 << 20 && stopped <= (16 << 20) + (64 << 10),
        "{stopped}"
    );
    assert!(peak < bound);
}
