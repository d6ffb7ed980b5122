//! Builds the Rust sample guests (`guest/`) for `wasm32-wasip2` into
//! `target/guests`, again only when `guest/` or `wit/` changed; the tests
//! find `<name>.wasm` in `env!("WSBOX_GUEST_DIR")`. It needs cargo and the
//! `wasm32-wasip2` target, nothing else: the Python peers' virtualenv and the
//! Python and JavaScript guests are made by the library on first use (see
//! `src/lib.rs`).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo");
    let repo = Path::new(&manifest_dir)
        .ancestors()
        .nth(2)
        .expect("tests/testbed/ is inside the repository")
        .to_path_buf();

    build_guests(&repo);
}

/// Environment variables that cargo sets for this build script, or that
/// configure the outer build, and that must not leak into the nested cargo
/// that builds the guests for another target.
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

fn build_guests(repo: &Path) {
    let guest = repo.join("guest");
    let target_dir = repo.join("target").join("guests");

    // Everything in guest/ but its own target directory, which a developer's
    // `cargo build` inside guest/ would otherwise keep touching, and the
    // Python and JavaScript guests, which the library builds when a test
    // asks for them. Directories are scanned recursively.
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
    for input in &inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }

    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        // Inside guest/, so that guest/.cargo/config.toml applies.
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
        .arg(&target_dir);
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
    run(
        &mut cargo,
        "building the sample guests (guest/)",
        "(the guests are built for wasm32-wasip2: `rustup target add wasm32-wasip2` if it is missing)",
    );

    let out = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=WSBOX_GUEST_DIR={}", out.display());
}

/// Runs `command`, panicking with its output if it fails.
fn run(command: &mut Command, what: &str, hint: &str) {
    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "{what}: cannot run {:?}: {e}\n{hint}",
            command.get_program()
        )
    });
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n{}{}\n{hint}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}
