//! CPU time of one instance: the CPU deadline (and the optional CPU budget)
//! counted in the time the guest actually ran, and the yield that keeps a
//! guest that computes from holding a tokio worker.
//!
//! Design:
//! - A ticker thread advances the engine's epoch every
//!   [`EPOCH_TICK`](crate::sandbox::EPOCH_TICK), and every store's epoch
//!   deadline is one tick away. When guest code reaches it, the store's
//!   epoch callback ([`CpuMeter::on_epoch`]) either traps the guest or
//!   yields to the tokio runtime (`tokio::task::yield_now`, which lets the
//!   worker run its other tasks and poll for I/O before the guest goes on)
//!   and sets the next deadline one tick later. So a guest never runs for
//!   more than about one tick without giving its worker back. When the
//!   guest enters guest code in a fresh poll (after a host call that waited,
//!   or at the start of an export call), the deadline is set one tick away
//!   again: it has just had its turn at the worker, and a deadline that
//!   passed while it waited would only cost it an extra trip through the
//!   scheduler.
//! - The time counted is the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`),
//!   not wall time, so a guest that was merely descheduled on a loaded
//!   machine is not charged for it. A future that runs guest code may be
//!   polled on a different thread each time, so [`CpuMeter::run`] wraps it
//!   and reads the clock around each `poll`; the epoch callback runs inside
//!   such a poll, on the same thread.
//! - The *stretch* is how long the guest has run since it last returned to
//!   the host. The store's call hook ([`CpuMeter::on_call`]) restarts it at
//!   zero whenever control enters guest code (a call into an export, a
//!   return from a host call), and pauses it while a host call runs. Time
//!   spent waiting inside a host call (`receive`, `poll`) is time the future
//!   is not polled, so it never counts. The call hook reads no clock (it
//!   runs on every host call); a stretch that restarts in the middle of a
//!   poll counts from the start of that poll, which charges the guest for at
//!   most the host work done earlier in the same poll, and polls of running
//!   guest code end at every tick. Without a budget, a poll that resumes a
//!   host function that was waiting (not the epoch callback's yield) reads
//!   no clock either, because the clock is a system call and that poll
//!   comes once per message a guest waits for: its time counts from its
//!   first tick, if it lasts that long. The deadline's resolution is about
//!   one tick.
//! - wasmtime runs the call hook around its own calls out of guest code too
//!   (libcalls), not only around host functions. Returning from those is not
//!   returning to the host: the epoch callback and the memory limiter
//!   ([`CpuMeter::libcall`]) mark the epoch check and `memory.grow` /
//!   `table.grow`, so they do not restart the stretch. The rarer libcalls
//!   they do not see (`memory.init`, `table.fill`, `table.copy`,
//!   `table.init`, `elem.drop`, a growth by 0) still restart it: a guest
//!   that loops on one of them, like a guest that loops on a cheap host
//!   call, is bounded by the CPU budget, not the deadline.
//! - When the stretch passes [`InstanceLimits::cpu_deadline`], the guest traps with
//!   [`CpuLimitExceeded::Deadline`]. When the instance's total CPU time (every
//!   poll of its calls, host work in them included, waiting never) passes
//!   [`InstanceLimits::cpu_budget`], it traps with [`CpuLimitExceeded::Budget`]: that
//!   bounds a guest that computes for just under the deadline, calls the
//!   host, and does it again.
//!
//! [`InstanceLimits::cpu_deadline`]: crate::InstanceLimits::cpu_deadline
//! [`InstanceLimits::cpu_budget`]: crate::InstanceLimits::cpu_budget

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{CallHook, UpdateDeadline};

/// `poll_start` of a poll that read no clock.
const UNREAD: u64 = u64::MAX;

/// Why an instance was stopped: the error its trap carries.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CpuLimitExceeded {
    /// It ran longer than the CPU deadline without returning to the host.
    #[error("the guest ran for more than its CPU deadline ({0:?}) without returning to the host; raise --cpu-deadline if it needs longer")]
    Deadline(Duration),
    /// Its calls used more CPU time than the CPU budget.
    #[error("the guest used more than its CPU budget ({0:?} of CPU time in all); raise --cpu-budget if it needs more")]
    Budget(Duration),
}

/// The CPU time of one instance's guest code: see the module docs.
///
/// Only one poll of one of the instance's calls runs at a time, and the
/// call hook and the epoch callback run inside it, so the fields are
/// atomics only to be shared; the runtime orders the polls.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    deadline: Duration,
    budget: Option<Duration>,
    /// CPU nanoseconds of the current stretch from earlier polls.
    stretch: AtomicU64,
    /// The thread's CPU clock when the current poll started.
    poll_start: AtomicU64,
    /// The guest is in a host call or not running at all (the stretch is
    /// paused).
    in_host: AtomicBool,
    /// CPU nanoseconds of every earlier poll (counted with a budget only).
    total: AtomicU64,
    /// The current call out of guest code is a libcall.
    libcall: AtomicBool,
    /// A poll started since the guest last called out of guest code.
    resumed: AtomicBool,
    /// The last poll ended waiting in a host function, and there is no
    /// budget: the next poll reads no clock.
    parked: AtomicBool,
}

impl CpuMeter {
    /// A meter for `deadline` and, if set, `budget`.
    pub(crate) fn new(deadline: Duration, budget: Option<Duration>) -> Arc<Self> {
        Arc::new(CpuMeter {
            deadline,
            budget,
            stretch: AtomicU64::new(0),
            poll_start: AtomicU64::new(thread_cpu_nanos()),
            in_host: AtomicBool::new(true),
            total: AtomicU64::new(0),
            libcall: AtomicBool::new(false),
            resumed: AtomicBool::new(false),
            parked: AtomicBool::new(false),
        })
    }

    /// Runs `future`, a call that runs this instance's guest code
    /// (instantiation or an export), measuring the thread CPU time of each
    /// of its polls.
    pub(crate) fn run<F: Future>(self: &Arc<Self>, future: F) -> impl Future<Output = F::Output> {
        let meter = self.clone();
        async move {
            let mut future = std::pin::pin!(future);
            std::future::poll_fn(|cx| {
                meter.poll_started();
                let polled = future.as_mut().poll(cx);
                meter.poll_ended();
                polled
            })
            .await
        }
    }

    fn poll_started(&self) {
        let start = if self.parked.load(Ordering::Relaxed) {
            UNREAD
        } else {
            thread_cpu_nanos()
        };
        self.poll_start.store(start, Ordering::Relaxed);
        self.resumed.store(true, Ordering::Relaxed);
    }

    fn poll_ended(&self) {
        let in_host = self.in_host.load(Ordering::Relaxed);
        let parked = in_host && !self.libcall.load(Ordering::Relaxed);
        self.parked
            .store(parked && self.budget.is_none(), Ordering::Relaxed);
        if in_host && self.budget.is_none() {
            return;
        }
        let spent = self.since_poll_start();
        if !in_host {
            self.stretch.fetch_add(spent, Ordering::Relaxed);
        }
        if self.budget.is_some() {
            self.total.fetch_add(spent, Ordering::Relaxed);
        }
    }

    fn since_poll_start(&self) -> u64 {
        match self.poll_start.load(Ordering::Relaxed) {
            UNREAD => 0,
            _ => self.spent_by(thread_cpu_nanos()),
        }
    }

    /// This poll's CPU time up to `now`: none for a poll that read no clock.
    fn spent_by(&self, now: u64) -> u64 {
        match self.poll_start.load(Ordering::Relaxed) {
            UNREAD => 0,
            start => now.saturating_sub(start),
        }
    }

    /// The store's call hook: restarts the stretch when control enters
    /// guest code, pauses it when it leaves. Returns whether to set the
    /// epoch deadline one tick away (control enters guest code in a fresh
    /// poll).
    pub(crate) fn on_call(&self, hook: CallHook) -> bool {
        match hook {
            CallHook::CallingWasm => {
                self.stretch.store(0, Ordering::Relaxed);
                self.in_host.store(false, Ordering::Relaxed);
                self.resumed.swap(false, Ordering::Relaxed)
            }
            CallHook::ReturningFromHost => {
                let resumed = self.resumed.swap(false, Ordering::Relaxed);
                let libcall = self.libcall.swap(false, Ordering::Relaxed);
                if !libcall {
                    self.stretch.store(0, Ordering::Relaxed);
                }
                self.in_host.store(false, Ordering::Relaxed);
                // After the epoch callback's yield, wasmtime sets the
                // deadline itself.
                resumed && !libcall
            }
            CallHook::CallingHost => {
                self.libcall.store(false, Ordering::Relaxed);
                self.resumed.store(false, Ordering::Relaxed);
                self.in_host.store(true, Ordering::Relaxed);
                false
            }
            CallHook::ReturningFromWasm => {
                self.in_host.store(true, Ordering::Relaxed);
                false
            }
        }
    }

    /// Marks the current call out of guest code as one of wasmtime's own
    /// (growing a memory or a table), not a host function: returning from it
    /// does not restart the stretch.
    pub(crate) fn libcall(&self) {
        self.libcall.store(true, Ordering::Relaxed);
    }

    /// The store's epoch callback, once a tick while guest code runs: past
    /// the deadline or the budget, the trap's error; else a yield to the
    /// runtime, and the next deadline one tick later.
    ///
    /// It runs inside a libcall, so the call hook has paused the stretch:
    /// this poll's time is added to it here, before the yield ends the poll.
    pub(crate) fn on_epoch(&self) -> wasmtime::Result<UpdateDeadline> {
        let now = thread_cpu_nanos();
        let spent = self.spent_by(now);
        let stretch = self.stretch.load(Ordering::Relaxed).saturating_add(spent);
        if Duration::from_nanos(stretch) > self.deadline {
            return Err(CpuLimitExceeded::Deadline(self.deadline).into());
        }
        if let Some(budget) = self.budget {
            let total = self.total.load(Ordering::Relaxed).saturating_add(spent);
            if Duration::from_nanos(total) > budget {
                return Err(CpuLimitExceeded::Budget(budget).into());
            }
            self.total.store(total, Ordering::Relaxed);
        }
        self.stretch.store(stretch, Ordering::Relaxed);
        self.poll_start.store(now, Ordering::Relaxed);
        self.libcall();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    }
}

/// The CPU time the calling thread has used, in nanoseconds.
#[cfg(unix)]
fn thread_cpu_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the call only writes it.
    let failed = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0;
    if failed {
        return 0;
    }
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

/// Without a thread CPU clock, wall time since the process started: a
/// descheduled guest is then charged for the time it waited.
#[cfg(not(unix))]
fn thread_cpu_nanos() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline_passed(result: wasmtime::Result<UpdateDeadline>) -> bool {
        // The trap's error is ours, for `describe_trap` to find.
        match result {
            Ok(UpdateDeadline::YieldCustom(1, _)) => false,
            Ok(_) => panic!("the callback yields one tick at a time"),
            Err(e) => e.downcast_ref::<CpuLimitExceeded>().is_some(),
        }
    }

    fn spin(time: Duration) {
        let start = thread_cpu_nanos();
        while Duration::from_nanos(thread_cpu_nanos() - start) < time {
            std::hint::black_box(());
        }
    }

    /// One tick of a spinning guest: the epoch check (a libcall) runs the
    /// callback, which yields and so ends the poll; the next poll resumes
    /// the guest.
    fn tick(meter: &CpuMeter) -> bool {
        meter.on_call(CallHook::CallingHost);
        let passed = deadline_passed(meter.on_epoch());
        meter.poll_ended();
        meter.poll_started();
        meter.on_call(CallHook::ReturningFromHost);
        passed
    }

    #[test]
    fn running_counts_but_being_descheduled_does_not() {
        let meter = CpuMeter::new(Duration::from_millis(40), None);
        meter.poll_started();
        meter.on_call(CallHook::CallingWasm);
        // Off the CPU for longer than the deadline: a loaded machine.
        std::thread::sleep(Duration::from_millis(120));
        assert!(!tick(&meter));
        spin(Duration::from_millis(60));
        assert!(tick(&meter));
    }

    #[test]
    fn the_stretch_adds_up_across_ticks_and_growths_and_restarts_on_return_from_the_host() {
        let meter = CpuMeter::new(Duration::from_millis(40), None);
        meter.poll_started();
        meter.on_call(CallHook::CallingWasm);
        spin(Duration::from_millis(15));
        assert!(!tick(&meter));
        spin(Duration::from_millis(15));
        // memory.grow: a libcall the limiter marks.
        meter.on_call(CallHook::CallingHost);
        meter.libcall();
        meter.on_call(CallHook::ReturningFromHost);
        assert!(!tick(&meter));
        spin(Duration::from_millis(15));
        assert!(tick(&meter));
        // A host call that waits: the poll ends inside it.
        meter.on_call(CallHook::CallingHost);
        meter.poll_ended();
        meter.poll_started();
        meter.on_call(CallHook::ReturningFromHost);
        spin(Duration::from_millis(25));
        assert!(!tick(&meter));
    }

    #[test]
    fn a_poll_resuming_a_waiting_host_call_counts_from_its_first_tick() {
        let meter = CpuMeter::new(Duration::from_millis(40), None);
        meter.poll_started();
        meter.on_call(CallHook::CallingWasm);
        // `receive` waits: the poll ends inside it, and the next one
        // resumes it without reading the clock.
        meter.on_call(CallHook::CallingHost);
        meter.poll_ended();
        meter.poll_started();
        meter.on_call(CallHook::ReturningFromHost);
        spin(Duration::from_millis(30));
        assert!(!tick(&meter));
        spin(Duration::from_millis(50));
        assert!(tick(&meter));
    }

    #[test]
    fn the_deadline_is_set_anew_only_when_guest_code_resumes_in_a_fresh_poll() {
        let meter = CpuMeter::new(Duration::from_millis(40), None);
        meter.poll_started();
        assert!(meter.on_call(CallHook::CallingWasm));
        // A host call that returns at once.
        assert!(!meter.on_call(CallHook::CallingHost));
        assert!(!meter.on_call(CallHook::ReturningFromHost));
        // One that waits: the poll ends inside it.
        meter.on_call(CallHook::CallingHost);
        meter.poll_ended();
        meter.poll_started();
        assert!(meter.on_call(CallHook::ReturningFromHost));
        // The epoch callback's yield: wasmtime sets the deadline itself.
        meter.on_call(CallHook::CallingHost);
        assert!(!deadline_passed(meter.on_epoch()));
        meter.poll_ended();
        meter.poll_started();
        assert!(!meter.on_call(CallHook::ReturningFromHost));
    }

    #[test]
    fn the_budget_counts_every_stretch() {
        let meter = CpuMeter::new(Duration::from_millis(40), Some(Duration::from_millis(100)));
        meter.poll_started();
        meter.on_call(CallHook::CallingWasm);
        for _ in 0..2 {
            spin(Duration::from_millis(35));
            assert!(!tick(&meter));
            // A host call that returns at once.
            meter.on_call(CallHook::CallingHost);
            meter.on_call(CallHook::ReturningFromHost);
        }
        spin(Duration::from_millis(35));
        assert!(tick(&meter));
    }
}
