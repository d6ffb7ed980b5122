//! Where the tests find what they run besides the host: the sample guest
//! components (Rust, Python and JavaScript), the Python interpreter of the
//! peers' virtualenv and the Node peer's `ws`; and a real `nats-server`
//! ([`nats`]).
//!
//! The Rust guests are built by the `wsbox-guests` crate's build script
//! (every guest, for the tests that depend on it) with the command of
//! [`rust_guests`], which the demo runs for its two guests only. The rest
//! needs Python, Node and the network, so it is made at test time, by the first
//! test in a test binary that asks for it, under a lock in `target/` that
//! test binaries running at the same time share; a warm run only compares
//! stamps and file times. A missing tool fails the tests that need it, with
//! a message that says what to install.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub mod nats;
mod node;
mod polyglot;
pub mod rust_guests;
mod steps;
mod venv;
pub mod wait;

/// The component file of sample guest `name` (e.g. `close-probe`,
/// `close-reporter`). Cargo keeps the hyphens of a command's binary name but
/// turns them into underscores for a handler's library, so both are tried.
/// They are there once `wsbox-guests` is built (a dev-dependency of the
/// crates whose tests run them).
pub fn guest(name: &str) -> PathBuf {
    let dir = rust_guests::dir(&repo());
    let command = dir.join(format!("{name}.wasm"));
    if command.exists() {
        return command;
    }
    dir.join(format!("{}.wasm", name.replace('-', "_")))
}

/// The Python interpreter of the peers' virtualenv (`target/py-peers`, with
/// `tests/peers/requirements.txt`), created or updated on first use.
///
/// # Panics
/// When the virtualenv cannot be made, e.g. without python3's venv module,
/// with a message that says what to install.
#[track_caller]
pub fn python() -> PathBuf {
    static PEERS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PEERS.get_or_init(venv::peers) {
        Ok(python) => python.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// The `node_modules` directory that holds the Node test peer's `ws`
/// (`target/node-peers`, from `tests/peers/node/package-lock.json`),
/// installed or updated on first use. Run `tests/peers/node/peer.js` with
/// `NODE_PATH` set to it.
///
/// # Panics
/// When it cannot be installed, e.g. without npm, with a message that says
/// what to install.
#[track_caller]
pub fn node_peers() -> PathBuf {
    static PEERS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PEERS.get_or_init(node::peers) {
        Ok(modules) => modules.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/testbed/ is inside the repository")
        .to_path_buf()
}

/// The repository's `target/` directory.
fn target() -> PathBuf {
    repo().join("target")
}

/// The component file of guest `name` (`echo`, `close-probe` or `chat`) written in
/// `language`: `"python"` (componentize-py, from `guest/python`) or `"js"`
/// (componentize-js, from `guest/js`). The guests of that language and
/// their tool are built or updated on first use.
///
/// # Panics
/// When they cannot be built, e.g. without npm, with a message that says
/// what to install.
#[track_caller]
pub fn polyglot_guest(language: &str, name: &str) -> PathBuf {
    match try_polyglot_guest(language, name) {
        Ok(component) => component,
        Err(why) => panic!("{why}"),
    }
}

/// [`polyglot_guest`], with the reason as an error instead of a panic.
pub fn try_polyglot_guest(language: &str, name: &str) -> Result<PathBuf, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static JS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = match language {
        "python" => PYTHON.get_or_init(polyglot::python),
        "js" => JS.get_or_init(polyglot::js),
        other => {
            return Err(format!(
                "no {other} guests: the languages are python and js"
            ))
        }
    };
    let component = built
        .as_ref()
        .map_err(Clone::clone)?
        .join(format!("{name}.wasm"));
    if !component.exists() {
        return Err(format!(
            "no {language} guest {name}: {} does not exist",
            component.display()
        ));
    }
    Ok(component)
}
