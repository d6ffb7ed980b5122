//! Which failures the guest sees as values and which ones trap.
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
    /// The component does not fit the world the host runs.
    #[error("{path} cannot run as a `{world}` component: {reason}")]
    WrongWorld {
        /// The file.
        path: String,
        /// The world the host expected.
        world: &'static str,
        /// What did not fit.
        reason: String,
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
    #[error("runtime error: {0}")]
    Runtime(String),
}

/// The crate-wide result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
