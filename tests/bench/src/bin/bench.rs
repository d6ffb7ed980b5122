//! `bench`: the benchmark driver ([`wsbox_bench::figures`]). Starts every
//! target echo server as a subprocess, runs `loadgen` against each in turn
//! and prints a Markdown report; `--out FILE` also writes it to FILE.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    wsbox_bench::figures::run(&wsbox_bench::figures::Args::parse())
}
