//! Where the test build put what the tests run besides the host: the sample
//! guest components and the Python interpreter of the peers' virtualenv.
//! Its build script makes both (see `build.rs`).

use std::path::{Path, PathBuf};

/// The component file of sample guest `name` (e.g. `close-probe`).
pub fn guest(name: &str) -> PathBuf {
    Path::new(env!("WSBOX_GUEST_DIR")).join(format!("{name}.wasm"))
}

/// The Python interpreter of the peers' virtualenv.
pub fn python() -> PathBuf {
    PathBuf::from(env!("WSBOX_PY_PEERS"))
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
