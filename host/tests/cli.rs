//! The `wsbox` command line: a guest's run and exit code, and one-line errors (never a panic) for a missing file, a core module, garbage, the wrong world, bad flags and an unreachable cluster.

mod support;

use futures_util::{SinkExt, StreamExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::output_within;

fn wsbox(args: &[&str]) -> Output {
    output_within(
        Command::new(env!("CARGO_BIN_EXE_wsbox")).args(args),
        &format!("wsbox {}", args.join(" ")),
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a clean failure: exit 2 and one line on stderr that contains `what`.
fn assert_one_line_error(out: &Output, what: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("wsbox: ") && stderr.contains(what),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsbox-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_missing_component_is_a_one_line_error() {
    assert_one_line_error(
        &wsbox(&["run", "/no/such/guest.wasm"]),
        "cannot read component /no/such/guest.wasm",
    );
}

#[test]
fn a_core_module_or_garbage_is_not_a_component() {
    let core = scratch("core.wasm", b"\0asm\x01\0\0\0");
    assert_one_line_error(&wsbox(&["run", arg(&core)]), "is a core WebAssembly module");
    let garbage = scratch("garbage.wasm", b"#!/bin/sh\necho hi\n");
    assert_one_line_error(
        &wsbox(&["run", arg(&garbage)]),
        "is not a WebAssembly component",
    );
}

#[test]
fn a_component_wasmtime_cannot_compile_is_refused_with_its_cause() {
    // A component's header, then a section id that does not exist.
    let broken = scratch("broken.wasm", b"\0asm\x0d\0\x01\0\x7f\x00");
    let out = wsbox(&["run", arg(&broken)]);
    assert_one_line_error(&out, "cannot compile the component");
    // wasmtime's error comes through as the cause, after the summary.
    let stderr = text(&out.stderr);
    let (_, cause) = stderr.split_once("broken.wasm: ").expect(&stderr);
    assert!(!cause.trim().is_empty(), "{stderr}");
}

#[test]
fn a_component_of_the_wrong_world_is_refused() {
    // The empty component: valid, but it exports no wasi:cli/run.
    let empty = scratch("empty.wasm", b"\0asm\x0d\0\x01\0");
    let out = wsbox(&["run", arg(&empty)]);
    assert_one_line_error(&out, "cannot run as a `wsbox:websocket/client` component");
    // wasmtime's reason comes through as the cause: the missing export.
    assert_one_line_error(&out, "wasi:cli/run");
}

#[test]
fn bad_flags_say_how_to_fix_them() {
    let guest = wsbox_testbed::guest("echo-client");
    assert_one_line_error(
        &wsbox(&["run", "--allow", "127.0.0.1:80", arg(&guest)]),
        "write it as scheme://host[:port]",
    );
    let out = wsbox(&["run", "--close-timeout", "soon", arg(&guest)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not a duration"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unreachable_or_invalid_cluster_is_a_one_line_error() {
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let client = wsbox_testbed::guest("echo-client");
    let handler = wsbox_testbed::guest("echo");
    for args in [
        vec!["run", "--cluster", &url, arg(&client)],
        vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cluster",
            &url,
            arg(&handler),
        ],
    ] {
        assert_one_line_error(
            &wsbox(&args),
            &format!("cannot connect to the cluster (NATS at {url})"),
        );
    }
    assert_one_line_error(
        &wsbox(&[
            "run",
            "--cluster",
            &url,
            "--cluster-prefix",
            "a.>",
            arg(&client),
        ]),
        "--cluster-prefix `a.>` is not a NATS subject prefix",
    );
}

/// A tokio-tungstenite echo server on a thread of its own; returns its port.
fn echo_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_text() || msg.is_binary() {
                            let _ = ws.send(msg).await;
                        }
                    }
                });
            }
        });
    });
    port
}

#[test]
fn run_passes_arguments_and_the_guests_exit_code() {
    let port = echo_server();
    let url = format!("ws://127.0.0.1:{port}/");
    let allow = format!("ws://127.0.0.1:{port}");
    let guest = wsbox_testbed::guest("echo-client");
    let out = wsbox(&[
        "run",
        "--allow",
        &allow,
        arg(&guest),
        &url,
        "first",
        "second",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("reply: first\nreply: second\n"), "{stdout}");
    assert!(stdout.contains(r#"close-status: 1000 "done""#), "{stdout}");

    // Without --allow the connect is denied and the guest fails.
    let out = wsbox(&["run", arg(&guest), &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("denied"),
        "{}",
        text(&out.stderr)
    );
}
