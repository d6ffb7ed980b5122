//! Where the test build put what the tests run besides the host: the sample
//! guest components (Rust, Python and JavaScript) and the Python interpreter
//! of the peers' virtualenv.
//! Its build script makes both (see `build.rs`).

use std::path::{Path, PathBuf};

/// The component file of sample guest `name` (e.g. `close-probe`,
/// `close-reporter`). Cargo keeps the hyphens of a command's binary name but
/// turns them into underscores for a handler's library, so both are tried.
pub fn guest(name: &str) -> PathBuf {
    let dir = Path::new(env!("WSBOX_GUEST_DIR"));
    let command = dir.join(format!("{name}.wasm"));
    if command.exists() {
        return command;
    }
    dir.join(format!("{}.wasm", name.replace('-', "_")))
}

/// The Python interpreter of the peers' virtualenv.
pub fn python() -> PathBuf {
    PathBuf::from(env!("WSBOX_PY_PEERS"))
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The component file of guest `name` (`echo` or `close-probe`) written in
/// `language`: `"python"` (componentize-py, from `guest/python`) or `"js"`
/// (componentize-js, from `guest/js`).
pub fn polyglot_guest(language: &str, name: &str) -> PathBuf {
    Path::new(env!("WSBOX_POLYGLOT_GUEST_DIR"))
        .join(language)
        .join(format!("{name}.wasm"))
}
