//! The sandbox around every instance: the engine's settings, the memory
//! limit ([`crate::limiter`]) and the CPU deadline ([`crate::cpu`]), and
//! what a trap says about them.
//!
//! Every call that runs guest code (instantiation, `upgrade`, `handle`,
//! `run`) is wrapped in [`CpuMeter::run`]: get the meter with [`cpu`]
//! before the call borrows the store.

use crate::close_code::CloseCode;
use crate::config::Config;
use crate::cpu::{CpuLimitExceeded, CpuMeter};
use crate::error::{Error, Result};
use crate::limiter::{self, InstanceLimiter, LimitExceeded};
use crate::view::{WebSocketCtx, WebSocketCtxView, WebSocketView};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The limits of one instance's sandbox, enforced by the store that
/// [`Runner`](crate::Runner) and [`Server`](crate::Server) make for it. An
/// embedder with stores of its own applies its own. The defaults are the
/// documented CLI defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceLimits {
    /// How many resource handles (websockets, pollables, WASI streams) one
    /// instance may hold; past it, the call that would add one traps.
    /// Default: 4096.
    pub max_handles: usize,
    /// The most memory one instance may have, in bytes: all its linear
    /// memories and tables together (8 bytes per table element). A growth
    /// past it traps that instance only. Default: 256 MiB.
    pub max_memory: usize,
    /// How long a guest may run without returning to the host (a host call,
    /// or the end of the export it runs); past it the guest traps. Counted
    /// in the CPU time the guest ran: time spent waiting inside host calls
    /// such as `receive`, or descheduled on a busy machine, does not count.
    /// Default: 10 s.
    pub cpu_deadline: Duration,
    /// How much CPU time one instance may use in all (its guest code and the
    /// host calls it makes, never time spent waiting); past it the guest
    /// traps. Default: none.
    pub cpu_budget: Option<Duration>,
}

impl InstanceLimits {
    /// The defaults, each stated on its field: the one place they are
    /// written (the CLI shows them from here).
    pub const DEFAULT: InstanceLimits = InstanceLimits {
        max_handles: 4096,
        max_memory: 256 << 20,
        cpu_deadline: Duration::from_secs(10),
        cpu_budget: None,
    };
}

impl Default for InstanceLimits {
    fn default() -> Self {
        InstanceLimits::DEFAULT
    }
}

/// How often the epoch advances: how long guest code runs before it yields
/// to the runtime, and the CPU deadline's resolution.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// An engine with the component model and epoch interruption, and its
/// ticker thread (which ends when the engine is dropped). With `pool`, the
/// engine uses the pooling allocator, sized for that many component
/// instances of `limits`.
pub(crate) fn engine(pool: Option<(u32, &InstanceLimits)>) -> Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    config.epoch_interruption(true);
    if let Some((instances, limits)) = pool {
        // The sample guests' component instances hold 3 (Rust), 4
        // (componentize-js) and 14 (componentize-py) core instances, one
        // memory and two tables each. Core instances only count against
        // the total, and unused memory and table slots cost address space,
        // not memory or mappings, so the totals leave wide room. A
        // component that needs more than one instance may have (the
        // limiter's caps) is refused when it is loaded. A table slot holds
        // `POOL_TABLE_ELEMENTS`; the limiter counts them against
        // `max_memory` like any table.
        let mut pooling = wasmtime::PoolingAllocationConfig::default();
        pooling
            .total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(256))
            .total_memories(instances.saturating_mul(4))
            .total_tables(instances.saturating_mul(8))
            .total_stacks(instances)
            .max_core_instances_per_component(cap(limiter::MAX_CORE_INSTANCES))
            .max_memories_per_component(cap(limiter::MAX_MEMORIES))
            .max_tables_per_component(cap(limiter::MAX_TABLES))
            .table_elements(POOL_TABLE_ELEMENTS)
            .max_memory_size(limits.max_memory);
        // Reserve only what an instance may use, not 4 GiB per memory:
        // bounds checks instead of guard pages, but room for many instances.
        config.memory_reservation(limits.max_memory as u64);
        config.memory_guard_size(0);
        // Copy the data segments in rather than map the module's image:
        // a mapped image splits every slot into two more memory mappings
        // (6 per connection instead of 4, stacks included), and copying a
        // few KiB measured no slower (instantiation p50 26 µs either way).
        config.memory_init_cow(false);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    }
    let engine =
        Engine::new(&config).map_err(|e| Error::runtime("cannot create the wasmtime engine", e))?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wsbox-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|e| Error::runtime("cannot start the epoch thread", e))?;
    Ok(engine)
}

/// How many elements a table of the pooling allocator holds: wasmtime's
/// default, and more than the guests we know use (160 KiB per table slot).
/// A table that would grow past it traps the instance, as the memory limit
/// does.
const POOL_TABLE_ELEMENTS: usize = 20_000;

fn cap(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The store data of every instance, client or handler: WASI, the resource
/// table, the websockets, the memory limit and the CPU meter.
pub struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    websockets: WebSocketCtx,
    limiter: InstanceLimiter,
    cpu: Arc<CpuMeter>,
}

impl InstanceState {
    /// The instance's websocket state.
    pub fn websockets_mut(&mut self) -> &mut WebSocketCtx {
        &mut self.websockets
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WebSocketView for InstanceState {
    fn websocket(&mut self) -> WebSocketCtxView<'_> {
        WebSocketCtxView {
            ctx: &mut self.websockets,
            table: &mut self.table,
        }
    }
}

/// A store for one instance, with its websockets under `config` and its
/// sandbox under `limits`.
pub(crate) fn store(
    engine: &Engine,
    wasi: WasiCtx,
    config: Arc<Config>,
    limits: &InstanceLimits,
) -> Store<InstanceState> {
    let mut table = ResourceTable::new();
    table.set_max_capacity(limits.max_handles);
    let cpu = CpuMeter::new(limits.cpu_deadline, limits.cpu_budget);
    let state = InstanceState {
        wasi,
        table,
        websockets: WebSocketCtx::new(config),
        limiter: InstanceLimiter::new(limits.max_memory, cpu.clone()),
        cpu: cpu.clone(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    let meter = cpu.clone();
    store.epoch_deadline_callback(move |_| meter.on_epoch());
    store.call_hook(move |mut store, hook| {
        if cpu.on_call(hook) {
            store.set_epoch_deadline(1);
        }
        Ok(())
    });
    store
}

/// The CPU meter of `store`'s instance, to wrap its calls in
/// ([`CpuMeter::run`]).
pub(crate) fn cpu(store: &Store<InstanceState>) -> Arc<CpuMeter> {
    store.data().cpu.clone()
}

/// Ends an instance: after a trap, what the guest left open closes with
/// 1011; then its connections end ([`WebSocketCtx::finish`]) and the store
/// is dropped.
pub(crate) async fn finish(mut store: Store<InstanceState>, trapped: bool) {
    let websockets = store.data_mut().websockets_mut();
    if trapped {
        websockets.set_drop_code(CloseCode::Error);
    }
    let ended = websockets.finish();
    drop(store);
    ended.await;
}

/// What made an instance trap, told by the error's type: the CPU and memory
/// limits are our own errors ([`CpuLimitExceeded`], [`LimitExceeded`]);
/// anything else is wasmtime's (a [`wasmtime::Trap`] code, or a host error
/// that ended the call).
pub(crate) enum TrapCause<'a> {
    /// The CPU deadline or the CPU budget.
    Cpu(&'a CpuLimitExceeded),
    /// The memory limit, or a growth that failed.
    Memory(&'a LimitExceeded),
    /// Anything else.
    Other,
}

impl<'a> TrapCause<'a> {
    /// The cause of the trap `err`.
    pub(crate) fn of(err: &'a wasmtime::Error) -> TrapCause<'a> {
        if let Some(cpu) = err.downcast_ref::<CpuLimitExceeded>() {
            TrapCause::Cpu(cpu)
        } else if let Some(memory) = err.downcast_ref::<LimitExceeded>() {
            TrapCause::Memory(memory)
        } else {
            TrapCause::Other
        }
    }
}

/// A trap's message, naming the CPU deadline, the CPU budget or the memory
/// limit when one of them was the cause; otherwise wasmtime's description,
/// with where in the guest it happened.
pub(crate) fn describe_trap(err: &wasmtime::Error, limits: &InstanceLimits) -> String {
    match TrapCause::of(err) {
        TrapCause::Cpu(cpu) => cpu.to_string(),
        TrapCause::Memory(memory) => format!(
            "the guest hit its memory limit ({} bytes for all its linear memories and tables; \
             raise --max-memory if it needs more): {}",
            limits.max_memory,
            chain(memory)
        ),
        TrapCause::Other => format!("{err:#}"),
    }
}

/// An error and its causes on one line, `: ` between them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
