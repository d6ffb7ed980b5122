//! The `wsbox` command line, one file per job: the arguments, `run`, the
//! serve plan, `serve`, reloading, the file watcher, signals and logging.

pub(crate) mod args;
pub(crate) mod log;
pub(crate) mod plan;
pub(crate) mod reload;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod signals;
pub(crate) mod watch;
