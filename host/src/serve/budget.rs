//! The memory-mapping budget: how many connections' instances fit in the
//! kernel's `vm.max_map_count`, measured at start-up by instantiating the
//! handler a few times.

use super::handler::Handler;
use super::ServeConfig;
use crate::error::{Error, Result};
use crate::sandbox;
use std::future::Future;
use std::path::Path;
use std::task::{Context, Poll};
use wasmtime_wasi::WasiCtxBuilder;

/// Mappings kept free for the process itself: thread stacks, large
/// buffers, the memory allocator's arenas.
const MAPPING_HEADROOM: usize = 1024;

/// Instances made at start-up to measure the mappings one costs.
pub(crate) const PROBES: usize = 8;

/// Mappings every connection slot costs besides its instance: a fibre
/// stack and its guard page (made per call with the default allocator, for
/// every slot up front with the pooling allocator).
const STACK_MAPPINGS: usize = 2;

/// What an instance of a Rust sample guest costs in the pooling allocator,
/// measured; used only to say how many slots fit when the pool itself does
/// not.
pub(crate) const POOLED_INSTANCE_ESTIMATE: usize = 2;

/// The kernel's limit on memory mappings, and how many the process had
/// before the engine was made.
#[derive(Clone, Copy)]
pub(crate) struct MapBudget {
    limit: usize,
    in_use: usize,
}

impl MapBudget {
    /// `None` where the kernel does not say (not Linux).
    pub(crate) fn measure() -> Option<MapBudget> {
        Some(MapBudget {
            limit: max_map_count()?,
            in_use: mappings()?,
        })
    }

    /// Refuses `config.max_connections` if that many slots of
    /// `per_instance` mappings each (plus their stacks) would not fit.
    pub(crate) fn check(self, config: &ServeConfig, per_instance: usize) -> Result<()> {
        let per_slot = per_instance + STACK_MAPPINGS;
        let room = self.limit.saturating_sub(self.in_use + MAPPING_HEADROOM);
        if config.max_connections <= room / per_slot {
            return Ok(());
        }
        // What to suggest leaves a mapping per connection to spare, for the
        // measurement to vary from run to run, and is a round number.
        let allowed = room / (per_slot + 1);
        Err(Error::TooManyConnections {
            requested: config.max_connections,
            allowed: if allowed >= 1000 {
                allowed / 100 * 100
            } else {
                allowed
            },
            per_connection: per_slot,
            needed: self.in_use + config.max_connections * per_slot,
            max_map_count: self.limit,
            in_use: self.in_use,
            pooling_hint: if config.pooling {
                ""
            } else {
                ", use --pooling"
            },
        })
    }
}

/// Instantiates the handler `probes + 1` times, so that a component that
/// cannot be instantiated at all fails here, not on every connection, and
/// returns the memory mappings one more instance costs (`None` where the
/// kernel does not say, or with no probes). A pool holds no more instances
/// than connections: give at most `max_connections - 1` probes.
pub(crate) fn measure_instance(
    handler: &Handler,
    probes: usize,
    path: &Path,
) -> Result<Option<usize>> {
    let instantiate = || {
        let mut store = handler.store(WasiCtxBuilder::new().build());
        let polled = {
            let cpu = sandbox::cpu(&store);
            let instantiated = std::pin::pin!(cpu.run(handler.pre.instantiate_async(&mut store)));
            instantiated.poll(&mut Context::from_waker(std::task::Waker::noop()))
        };
        match polled {
            Poll::Ready(Ok(_)) => Ok(Some((store, mappings()))),
            Poll::Ready(Err(e)) => Err(Error::runtime(
                format!("cannot instantiate {}", path.display()),
                e,
            )),
            // Only a start function that waits could get here; measure
            // nothing then.
            Poll::Pending => Ok(None),
        }
    };
    // The first instance may map what later ones share; the others give
    // the cost of one more. It varies (the kernel merges neighbouring
    // mappings when it can), so take the most any one of them cost.
    let mut stores = Vec::with_capacity(probes + 1);
    let mut counts = Vec::with_capacity(probes + 1);
    for _ in 0..=probes {
        let Some((store, Some(count))) = instantiate()? else {
            return Ok(None);
        };
        stores.push(store);
        counts.push(count);
    }
    if probes == 0 {
        return Ok(None);
    }
    let most = counts
        .windows(2)
        .map(|pair| pair[1].saturating_sub(pair[0]))
        .max();
    Ok(most.map(|n| n.max(1)))
}

/// The most memory mappings the kernel allows this process, where it says
/// (`/proc/sys/vm/max_map_count` on Linux).
fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// How many memory mappings this process has now, where the kernel says
/// (`/proc/self/maps` on Linux).
fn mappings() -> Option<usize> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count())
}
