//! How the Rust sample guests (`guest/`) are built for `wasm32-wasip2` into
//! `target/guests`: one cargo command, used by the `wsbox-guests` build
//! script (every guest, for the tests; it compiles this file itself) and by
//! the demo (only its two). `repo` is the repository's root.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to do when the build fails for want of the target.
pub const HINT: &str =
    "(the guests are built for wasm32-wasip2: `rustup target add wasm32-wasip2` if it is missing)";

/// Environment variables that cargo sets for a build script or a `cargo
/// run`, or that configure the outer build, and that must not leak into the
/// nested cargo that builds the guests for another target.
const LEAKING: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_LINKER",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
];
const LEAKING_PREFIXES: &[&str] = &[
    "CARGO_PROFILE_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "DEP_",
];

/// Where the built guests are: `target/guests/wasm32-wasip2/release`.
pub fn dir(repo: &Path) -> PathBuf {
    repo.join("target")
        .join("guests")
        .join("wasm32-wasip2")
        .join("release")
}

/// The command that builds `packages` of `guest/` (all of them when empty)
/// into `target/guests`; it runs inside `guest/`, so that
/// `guest/.cargo/config.toml` applies.
pub fn build_command(repo: &Path, packages: &[&str]) -> Command {
    let guest = repo.join("guest");
    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(&guest)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(guest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(repo.join("target").join("guests"));
    for package in packages {
        cargo.args(["-p", package]);
    }
    for (name, _) in env::vars_os() {
        let name = name.to_string_lossy();
        if LEAKING.contains(&name.as_ref())
            || LEAKING_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix))
        {
            cargo.env_remove(name.as_ref());
        }
    }
    cargo
}

/// What the build reads: everything in `guest/` but its own target
/// directory and the Python and JavaScript guests (which the library
/// builds when a test asks for them), and `wit/`. Directories count with
/// everything below them.
pub fn inputs(repo: &Path) -> Vec<PathBuf> {
    let guest = repo.join("guest");
    let mut inputs: Vec<PathBuf> = fs::read_dir(&guest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", guest.display()))
        .map(|entry| entry.expect("readable guest/ entry").path())
        .filter(|path| {
            !["target", "python", "js"]
                .iter()
                .any(|skip| path.ends_with(skip))
        })
        .collect();
    inputs.sort();
    inputs.push(repo.join("wit"));
    inputs
}
