//! The `--deflate-*` flags reach the wire: `wsbox serve` answers an offer with exactly the parameters they set, `wsbox run` offers them, and a window size out of 8-15 is one line naming the flag, exit 2.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{output_within, serve, wait_within, NET_WAIT, WAIT};

/// Reads an HTTP head (up to the empty line) from `stream`, within
/// [`NET_WAIT`].
fn read_head(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(NET_WAIT)).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => panic!(
                "the peer ended TCP inside the head: {:?}",
                String::from_utf8_lossy(&head)
            ),
            Err(e) => panic!(
                "no whole head within {NET_WAIT:?} ({e}): {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    String::from_utf8(head).unwrap()
}

/// Every `Sec-WebSocket-Extensions` value in `head`.
fn extensions(head: &str) -> Vec<String> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|(_, value)| value.trim().to_string())
        .collect()
}

#[test]
fn serve_answers_with_the_flags_parameters() {
    let server = serve(&[
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--deflate".as_ref(),
        "--deflate-server-max-window-bits".as_ref(),
        "10".as_ref(),
        "--deflate-client-no-context-takeover".as_ref(),
        wsbox_testbed::guest("echo").as_os_str(),
    ]);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_write_timeout(Some(NET_WAIT)).unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        )
        .unwrap();
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // The server limits its own window to 10 bits and tells the client to
    // reset its context; the client's window stays 15, so the answer does
    // not name it.
    assert_eq!(
        extensions(&head),
        ["permessage-deflate; client_no_context_takeover; server_max_window_bits=10"],
        "{head}"
    );
}

#[test]
fn run_offers_the_flags_parameters() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("ws://127.0.0.1:{port}/");
    let allow = format!("ws://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsbox"))
        .args(["run", "--allow", &allow, "--deflate"])
        .args(["--deflate-server-max-window-bits", "10"])
        .arg("--deflate-client-no-context-takeover")
        .arg(wsbox_testbed::guest("echo-client"))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wsbox run starts");
    // `wsbox run` compiles the guest first: up to WAIT for its connect.
    let deadline = Instant::now() + WAIT;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("wsbox run did not connect within {WAIT:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let head = read_head(&mut stream);
    // No answer: the guest's connect fails and `wsbox run` exits.
    drop(stream);
    wait_within(&mut child, "wsbox run");
    assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
    assert_eq!(
        extensions(&head),
        ["permessage-deflate; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits"],
        "{head}"
    );
}

#[test]
fn a_window_size_out_of_range_is_one_line_naming_the_flag() {
    for (command, guest) in [("serve", "echo"), ("run", "echo-client")] {
        for flag in [
            "--deflate-server-max-window-bits",
            "--deflate-client-max-window-bits",
        ] {
            for bits in ["16", "7"] {
                let out = output_within(
                    Command::new(env!("CARGO_BIN_EXE_wsbox"))
                        .args([command, "--deflate", flag, bits])
                        .arg(wsbox_testbed::guest(guest)),
                    &format!("wsbox {command} {flag} {bits}"),
                );
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
                assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
                assert!(
                    stderr.starts_with("wsbox: ")
                        && stderr.contains(&format!("{flag} {bits}"))
                        && stderr.contains("from 8 to 15"),
                    "{command}: {stderr}"
                );
            }
        }
    }
}
