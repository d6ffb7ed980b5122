//! The memory limit of one instance: all its linear memories and tables
//! together stay under [`InstanceLimits::max_memory`], and it may make only so many
//! core instances, memories and tables.
//!
//! wasmtime's `StoreLimits` caps each linear memory on its own and tables
//! not at all, so a component of several core modules could grow every one
//! of its memories to the cap, and a `table.grow` loop could take gigabytes
//! of host memory. [`InstanceLimiter`] keeps one sum per store instead: the
//! bytes of every linear memory, plus [`TABLE_ELEMENT_BYTES`] for every
//! table element. A growth (or a new memory or table at instantiation) that
//! would take the sum past the limit fails with [`LimitExceeded`], which
//! traps that instance only; [`describe_trap`](crate::sandbox::describe_trap)
//! recognises it by its type. So does any other failed growth: past a
//! memory's or table's own maximum (or the pooling allocator's per-table
//! size), or when the host cannot map more memory.
//!
//! A store holds one guest instance, and memories and tables never shrink,
//! so the sum only grows until the store is dropped, which frees them all.
//!
//! [`InstanceLimits::max_memory`]: crate::InstanceLimits::max_memory

use crate::cpu::CpuMeter;
use std::sync::Arc;
use wasmtime::ResourceLimiter;

/// Host bytes counted per table element. wasmtime 48 stores a `funcref`
/// element as one pointer (8 bytes on 64-bit hosts, also with lazy table
/// initialization) and an `externref` element as a 4-byte GC reference; the
/// limiter is not told the element type, so every element counts as the
/// larger of the two. (The objects an `externref` points to live in the GC
/// heap, which only the host can fill: a guest cannot make them.)
pub(crate) const TABLE_ELEMENT_BYTES: usize = 8;

/// Core instances one instance may make. Measured (wasmtime's count of
/// the component's core instances): the Rust `echo` makes 3, the
/// componentize-js one 4, the componentize-py one 14; a Python guest with
/// more native extension modules makes more, so the cap leaves a wide
/// margin. Each costs only its `VMContext`: its memories and tables are
/// capped below.
pub(crate) const MAX_CORE_INSTANCES: usize = 256;

/// Linear memories one instance may define. The Rust, Python and
/// JavaScript sample guests define 1. With the default allocator each
/// memory reserves 4 GiB of address space, so this bounds what one instance
/// can reserve.
pub(crate) const MAX_MEMORIES: usize = 8;

/// Tables one instance may define. The Rust, Python and JavaScript sample
/// guests define 2.
pub(crate) const MAX_TABLES: usize = 16;

/// Why an instance was stopped growing: the error a trap carries.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LimitExceeded {
    /// The sum of its memories and tables would pass the limit.
    #[error(
        "growing a {what} would take its linear memories and tables to {wanted} bytes \
         (tables at {TABLE_ELEMENT_BYTES} bytes per element)"
    )]
    Sum {
        /// "linear memory" or "table".
        what: &'static str,
        /// The sum the growth would have made.
        wanted: usize,
    },
    /// A memory or table would pass its own maximum.
    #[error("a {what} cannot grow to {desired} {unit}: its maximum is {maximum} {unit} ({whose})")]
    Maximum {
        /// "linear memory" or "table".
        what: &'static str,
        /// "bytes" or "elements".
        unit: &'static str,
        /// The size asked for.
        desired: usize,
        /// The most it may have.
        maximum: usize,
        /// Where the maximum comes from.
        whose: &'static str,
    },
    /// The growth was allowed, and then failed.
    #[error("growing a {what} failed")]
    Failed {
        /// "linear memory" or "table".
        what: &'static str,
        /// Why: wasmtime's error, with its causes.
        #[source]
        source: crate::error::Cause,
    },
}

/// The store's [`ResourceLimiter`]: see the module docs.
#[derive(Debug)]
pub(crate) struct InstanceLimiter {
    limit: usize,
    used: usize,
    /// Told that a growth is wasmtime's own call out of guest code, not a
    /// host call (see [`CpuMeter::libcall`]).
    cpu: Arc<CpuMeter>,
}

impl InstanceLimiter {
    /// A limiter that keeps linear memories and tables under `limit` bytes
    /// together.
    pub(crate) fn new(limit: usize, cpu: Arc<CpuMeter>) -> Self {
        InstanceLimiter {
            limit,
            used: 0,
            cpu,
        }
    }

    fn grow(&mut self, what: &'static str, current: usize, desired: usize) -> wasmtime::Result<()> {
        let wanted = self.used.saturating_add(desired.saturating_sub(current));
        if wanted > self.limit {
            return Err(LimitExceeded::Sum { what, wanted }.into());
        }
        self.used = wanted;
        Ok(())
    }
}

impl ResourceLimiter for InstanceLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.cpu.libcall();
        if let Some(maximum) = maximum.filter(|&max| desired > max) {
            return Err(LimitExceeded::Maximum {
                what: "linear memory",
                unit: "bytes",
                desired,
                maximum,
                whose: "the memory's own",
            }
            .into());
        }
        self.grow("linear memory", current, desired)?;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(LimitExceeded::Failed {
            what: "linear memory",
            source: error.into(),
        }
        .into())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.cpu.libcall();
        if let Some(maximum) = maximum.filter(|&max| desired > max) {
            return Err(LimitExceeded::Maximum {
                what: "table",
                unit: "elements",
                desired,
                maximum,
                whose: "the table's own, or the pooling allocator's per-table size",
            }
            .into());
        }
        self.grow(
            "table",
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        )?;
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(LimitExceeded::Failed {
            what: "table",
            source: error.into(),
        }
        .into())
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::sandbox;
    use crate::sandbox::InstanceLimits;
    use std::sync::Arc;
    use wasmtime::component::{Component, Linker};
    use wasmtime_wasi::p2::bindings::CommandPre;

    const LIMIT: usize = 64 << 20;

    fn is_limit(result: wasmtime::Result<bool>) -> bool {
        match result {
            Ok(_) => false,
            Err(e) => e.downcast_ref::<LimitExceeded>().is_some(),
        }
    }

    #[test]
    fn memories_and_tables_count_together() {
        let cpu = CpuMeter::new(std::time::Duration::from_secs(10), None);
        let mut limiter = InstanceLimiter::new(LIMIT, cpu);
        // Two memories of 24 MiB each fit; a third does not.
        for _ in 0..2 {
            assert!(limiter.memory_growing(0, 64 << 10, None).unwrap());
            assert!(limiter.memory_growing(64 << 10, 24 << 20, None).unwrap());
        }
        assert!(is_limit(limiter.memory_growing(0, 24 << 20, None)));
        // 16 MiB are left: a table of 1 Mi elements (8 MiB) fits, and so
        // does growing it to 2 Mi (16 MiB), but not by one more element.
        assert!(limiter.table_growing(0, 1 << 20, None).unwrap());
        assert!(limiter.table_growing(1 << 20, 2 << 20, None).unwrap());
        let one_more = (2 << 20) + 1;
        assert!(is_limit(limiter.table_growing(2 << 20, one_more, None)));
        // Past a maximum of their own, both trap too.
        assert!(is_limit(limiter.table_growing(
            1 << 20,
            30_000,
            Some(20_000)
        )));
        assert!(is_limit(limiter.memory_growing(
            0,
            128 << 10,
            Some(64 << 10)
        )));
    }

    /// The resident memory of this process, from `/proc/self/status`.
    fn resident() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib << 10
    }

    /// Runs `tests/wat/NAME.wat` with the pooling allocator and a 64 MiB
    /// limit; returns the trap's message and how much the resident memory
    /// grew at most meanwhile.
    async fn run_pooled(name: &str) -> (String, usize) {
        let path = format!("{}/../tests/wat/{name}.wat", env!("CARGO_MANIFEST_DIR"));
        let limits = InstanceLimits {
            max_memory: LIMIT,
            ..InstanceLimits::default()
        };
        let engine = sandbox::engine(Some((2, &limits))).unwrap();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        let component = Component::from_file(&engine, &path).unwrap();
        let pre = CommandPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        let config = Arc::new(Config::default());
        let baseline = resident();
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(baseline));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    peak.fetch_max(resident(), std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            })
        };
        let mut store = sandbox::store(
            &engine,
            wasmtime_wasi::WasiCtxBuilder::new().build(),
            config,
            &limits,
        );
        let cpu = sandbox::cpu(&store);
        let result = match cpu.run(pre.instantiate_async(&mut store)).await {
            Ok(command) => cpu.run(command.wasi_cli_run().call_run(&mut store)).await,
            Err(e) => Err(e),
        };
        drop(store);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        sampler.join().unwrap();
        let grew = peak
            .load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(baseline);
        match result {
            Err(e) => (sandbox::describe_trap(&e, &limits), grew),
            Ok(r) => panic!("{name} was not stopped: it returned {r:?}"),
        }
    }

    #[tokio::test]
    async fn with_the_pooling_allocator_memories_and_tables_are_bounded_too() {
        for name in ["memories", "table"] {
            let (message, grew) = run_pooled(name).await;
            eprintln!("{name}: {message}");
            assert!(message.contains("memory limit"), "{name}: {message}");
            // The guest asked for 320 MiB or more.
            assert!(
                grew < 2 * LIMIT,
                "{name}: resident memory grew by {} MiB",
                grew >> 20
            );
        }
    }
}
