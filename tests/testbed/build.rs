//! Prepares what the tests run besides the host:
//!
//! - the sample guests (`guest/`), built once for `wasm32-wasip2` into
//!   `target/guests`; the tests find `<name>.wasm` in `env!("WSBOX_GUEST_DIR")`;
//! - a Python virtualenv with the test peers' requirements
//!   (`tests/peers/requirements.txt`) in `target/py-peers`; the tests run
//!   `env!("WSBOX_PY_PEERS")`, its interpreter.

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
    python_peers(&repo);
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
    // `cargo build` inside guest/ would otherwise keep touching. Directories
    // are scanned recursively.
    let mut inputs: Vec<PathBuf> = fs::read_dir(&guest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", guest.display()))
        .map(|entry| entry.expect("readable guest/ entry").path())
        .filter(|path| !path.ends_with("target"))
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

fn python_peers(repo: &Path) {
    let requirements = repo.join("tests").join("peers").join("requirements.txt");
    let venv = repo.join("target").join("py-peers");
    let python = venv.join("bin").join("python");
    println!("cargo:rerun-if-changed={}", requirements.display());
    println!("cargo:rustc-env=WSBOX_PY_PEERS={}", python.display());

    let Ok(wanted) = fs::read_to_string(&requirements) else {
        // No Python peers (yet): nothing to install.
        return;
    };
    let hint = format!(
        "the test peers need python3 with the venv and pip modules \
         (Debian: apt-get install python3-venv python3-pip); \
         if {} is broken, delete it",
        venv.display()
    );
    if !python.exists() {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "creating the Python virtualenv for the test peers",
            &hint,
        );
    }
    // The stamp holds the requirements last installed.
    let stamp = venv.join("requirements.stamp");
    if fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return;
    }
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "installing tests/peers/requirements.txt",
        &hint,
    );
    fs::write(&stamp, wanted).unwrap_or_else(|e| panic!("cannot write {}: {e}", stamp.display()));
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
