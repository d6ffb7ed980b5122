//! Builds the Rust sample guests (`guest/`) for `wasm32-wasip2` into
//! `target/guests`, again only when `guest/` or `wit/` changed; the tests
//! find them with `wsbox_testbed::guest`. It needs cargo and the
//! `wasm32-wasip2` target, nothing else.

use std::path::Path;

// The testbed's file, compiled here too: the demo builds with the same
// command, and the build script need not build the testbed's dependencies.
#[allow(dead_code)]
#[path = "../testbed/src/rust_guests.rs"]
mod rust_guests;

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/guests/ is inside the repository");
    for input in rust_guests::inputs(repo) {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    let mut cargo = rust_guests::build_command(repo, &[]);
    let output = cargo.output().unwrap_or_else(|e| {
        panic!(
            "building the sample guests (guest/): cannot run {:?}: {e}\n{}",
            cargo.get_program(),
            rust_guests::HINT
        )
    });
    if !output.status.success() {
        panic!(
            "building the sample guests (guest/) failed ({}):\n{}{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            rust_guests::HINT
        );
    }
}
