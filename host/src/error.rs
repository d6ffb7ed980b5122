//! The host's errors: which failures the guest sees as values and which
//! ones trap ([`HostError`]), and the errors of the embedding API and the
//! CLI ([`Error`]), which keep their causes.
//!
//! Network and protocol failures, bad arguments and wrong states are
//! [`ErrorCode`] values: the guest inspects them and goes on. A broken
//! resource table (a handle the guest does not own) is a trap, and so is any
//! other failure of the host itself: only the calling instance dies.

use crate::bindings::types::ErrorCode;
use wasmtime::component::ResourceTableError;

/// The error type of the generated host functions that return `error-code`.
#[derive(Debug)]
pub enum HostError {
    /// A value returned to the guest.
    Code(ErrorCode),
    /// A trap: the calling instance is torn down.
    Trap(wasmtime::Error),
}

/// The result of a host function that returns `error-code`.
pub type HostResult<T> = std::result::Result<T, HostError>;

impl From<ErrorCode> for HostError {
    fn from(code: ErrorCode) -> Self {
        HostError::Code(code)
    }
}

impl From<ResourceTableError> for HostError {
    fn from(err: ResourceTableError) -> Self {
        HostError::Trap(err.into())
    }
}

impl HostError {
    /// Splits the error into the value for the guest or the trap.
    pub(crate) fn into_code(self) -> wasmtime::Result<ErrorCode> {
        match self {
            HostError::Code(code) => Ok(code),
            HostError::Trap(err) => Err(err),
        }
    }
}

/// A socket's failure, kept as the `io::Error` (its kind and its source)
/// until it reaches the guest or the log. Two are equal when their kinds
/// and messages are.
#[derive(Debug, Clone)]
pub(crate) struct IoFailure(std::sync::Arc<std::io::Error>);

impl From<std::io::Error> for IoFailure {
    fn from(e: std::io::Error) -> Self {
        IoFailure(std::sync::Arc::new(e))
    }
}

impl From<&str> for IoFailure {
    fn from(what: &str) -> Self {
        std::io::Error::other(what.to_string()).into()
    }
}

impl PartialEq for IoFailure {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for IoFailure {}

impl std::fmt::Display for IoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub(crate) fn invalid_parameter(msg: impl Into<String>) -> HostError {
    HostError::Code(ErrorCode::InvalidParameter(msg.into()))
}

pub(crate) fn invalid_state(msg: impl Into<String>) -> HostError {
    HostError::Code(ErrorCode::InvalidState(msg.into()))
}

/// Errors of the embedding API and the CLI: configuration, loading and
/// running components.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An `--allow` pattern could not be parsed.
    #[error(transparent)]
    Pattern(#[from] crate::policy::PatternError),
    /// The component file could not be read.
    #[error("cannot read component {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a WebAssembly component.
    #[error("{path} is not a WebAssembly component: {reason}")]
    NotAComponent {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// wasmtime cannot compile the component: it is not valid, or it uses a
    /// feature the engine does not enable.
    #[error("cannot compile the component {path}")]
    Compile {
        /// The file.
        path: String,
        /// wasmtime's error, with its causes.
        #[source]
        source: Cause,
    },
    /// The component does not fit the world the host runs.
    #[error("{path} cannot run as a `{world}` component")]
    WrongWorld {
        /// The file.
        path: String,
        /// The world the host expected.
        world: &'static str,
        /// What did not fit: wasmtime's error, with its causes.
        #[source]
        source: Cause,
    },
    /// A CA file for `wss://` could not be loaded.
    #[error("cannot load CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The runtime failed outside the guest's control.
    #[error("{what}")]
    Runtime {
        /// What the host was doing.
        what: String,
        /// Why it failed: wasmtime's or the system's error, with its causes.
        #[source]
        source: Cause,
    },
    /// The cluster (`--cluster`, NATS) is misconfigured or unreachable at
    /// start-up; the string says which and what to do.
    #[error("{0}")]
    Cluster(String),
    /// The server's own settings cannot be used: a route, a TLS
    /// certificate or key, a manifest; the string names the file or route
    /// and says the fix.
    #[error("{0}")]
    Serve(String),
    /// `max_connections` live instances would need more memory mappings
    /// than the kernel allows this process (`vm.max_map_count` on Linux):
    /// past that, instantiation fails, and so may the server's own
    /// allocations.
    #[error(
        "{requested} connections need about {needed} memory mappings \
         ({per_connection} per connection with this component and allocator), but \
         vm.max_map_count is {max_map_count} and {in_use} are in use: \
         lower --max-connections to at most {allowed}{pooling_hint}, or raise the \
         limit (sysctl -w vm.max_map_count=262144)"
    )]
    TooManyConnections {
        /// The configured maximum.
        requested: usize,
        /// About the most that fit (rounded down to hundreds).
        allowed: usize,
        /// Mappings one connection takes: its instance (measured at
        /// start-up) and its stack.
        per_connection: usize,
        /// What `requested` live instances would take.
        needed: usize,
        /// The kernel's limit.
        max_map_count: usize,
        /// Mappings the process had before the first connection.
        in_use: usize,
        /// A hint to use the pooling allocator, when it is not in use.
        pooling_hint: &'static str,
    },
}

/// The cause an [`Error`] keeps: a wasmtime or system error, its own causes
/// reachable through [`source`](std::error::Error::source), so that the edge
/// (`{:#}` with `anyhow`, for one) prints the whole chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

impl Error {
    /// A runtime failure: `what` the host was doing, and the error `source`.
    pub(crate) fn runtime(what: impl Into<String>, source: impl Into<Cause>) -> Error {
        Error::Runtime {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// The crate-wide result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
