//! The sandbox around every instance: the engine's settings, the memory cap
//! and the CPU deadline.
//!
//! The CPU deadline uses epoch interruption: a thread advances the engine's
//! epoch every [`EPOCH_TICK`], and each store's deadline is re-armed every
//! time control enters guest code (a call into an export, a return from a
//! host call). So only time the guest spends running counts, never time it
//! spends waiting inside a host call such as `receive`.

use crate::config::{Config, Limits};
use crate::error::{Error, Result};
use crate::view::{WebSocketCtx, WebSocketCtxView, WebSocketView};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the epoch advances: the CPU deadline's resolution.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// An engine with the component model and epoch interruption, and its
/// ticker thread (which ends when the engine is dropped). With `pool`, the
/// engine uses the pooling allocator, sized for that many component
/// instances of `limits`.
pub(crate) fn engine(pool: Option<(u32, &Limits)>) -> Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    config.epoch_interruption(true);
    if let Some((instances, limits)) = pool {
        // A Rust guest's component instance holds about three core
        // instances, two memories and three tables; a componentize-py one
        // over a hundred core instances. Core instances only count against
        // the total, and unused memory and table slots cost address space,
        // not memory or mappings, so the totals leave room for both.
        let mut pooling = wasmtime::PoolingAllocationConfig::default();
        pooling
            .total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(256))
            .total_memories(instances.saturating_mul(4))
            .total_tables(instances.saturating_mul(8))
            .total_stacks(instances)
            .max_memory_size(limits.max_memory);
        // Reserve only what an instance may use, not 4 GiB per memory:
        // bounds checks instead of guard pages, but room for many instances.
        config.memory_reservation(limits.max_memory as u64);
        config.memory_guard_size(0);
        config.memory_init_cow(true);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    }
    let engine = Engine::new(&config).map_err(|e| Error::Runtime(format!("{e:#}")))?;
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
        .map_err(|e| Error::Runtime(format!("cannot start the epoch thread: {e}")))?;
    Ok(engine)
}

/// The store data of every instance, client or handler: WASI, the resource
/// table, the websockets and the memory cap.
pub struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    websockets: WebSocketCtx,
    limits: StoreLimits,
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

/// A store for one instance, with the memory cap and the CPU deadline of
/// `config.limits`.
pub(crate) fn store(engine: &Engine, wasi: WasiCtx, config: Arc<Config>) -> Store<InstanceState> {
    let limits = config.limits.clone();
    let mut table = ResourceTable::new();
    table.set_max_capacity(limits.max_handles);
    let state = InstanceState {
        wasi,
        table,
        websockets: WebSocketCtx::new(config),
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.max_memory)
            .trap_on_grow_failure(true)
            .build(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    let ticks = (limits.cpu_deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
    store.epoch_deadline_trap();
    store.set_epoch_deadline(ticks);
    store.call_hook(move |mut store, hook| {
        if hook.exiting_host() {
            store.set_epoch_deadline(ticks);
        }
        Ok(())
    });
    store
}

/// Ends an instance: after a trap, what the guest left open closes with
/// 1011; then the store is dropped, which starts the closing handshake of
/// every websocket still open, and this waits for their connections to end.
/// Each connection bounds its own steps by the close timeout; one that is
/// still running after twice that is cut off, so no socket outlives its
/// instance by more.
pub(crate) async fn finish(mut store: Store<InstanceState>, trapped: bool) {
    let websockets = store.data_mut().websockets_mut();
    if trapped {
        websockets.set_drop_code(crate::CloseCode::Error.into());
    }
    let wait = websockets.config().limits.close_timeout * 2 + Duration::from_secs(1);
    let tasks = websockets.take_tasks();
    drop(store);
    let deadline = tokio::time::Instant::now() + wait;
    for mut task in tasks {
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            tracing::warn!("a connection outlived its instance by {wait:?}: closing it");
            task.abort();
            let _ = task.await;
        }
    }
}

/// A trap's message, naming the CPU deadline or the memory cap when one of
/// them was the cause.
pub(crate) fn describe_trap(err: &wasmtime::Error, limits: &Limits) -> String {
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!(
            "the guest ran for more than its CPU deadline ({:?}) without returning to the host",
            limits.cpu_deadline
        ),
        _ => {
            let text = format!("{err:#}");
            if text.contains("forcing trap when growing memory") {
                format!(
                    "the guest hit its memory limit ({} bytes): {text}",
                    limits.max_memory
                )
            } else {
                text
            }
        }
    }
}

/// The most memory mappings the kernel allows this process, where it says
/// (`/proc/sys/vm/max_map_count` on Linux).
pub(crate) fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// How many memory mappings this process has now, where the kernel says
/// (`/proc/self/maps` on Linux).
pub(crate) fn mappings() -> Option<usize> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count())
}
