//! Depending on this crate builds every Rust sample guest (`guest/`) into
//! `target/guests` before the dependent compiles (see `build.rs`), so that
//! `wsbox_testbed::guest` finds them. It has no code.
