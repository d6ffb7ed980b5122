//! `wsbox serve --config` as a process: `--check` validates a manifest (compiling its components) and exits; SIGHUP and `--watch` reload it without dropping connections: a connection opened before keeps the old handler, one opened after gets the new one, and a broken new component is refused in one line while the old one stays; a reload that changes the routes serves the new path and 404s the removed one; a component that compiles but cannot be instantiated is refused by `--check` and by a reload.

mod support;

use futures_util::{SinkExt, StreamExt};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{output_within, serve, within};
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Copies sample guest `name` over `to`: written aside, then renamed.
fn install(name: &str, to: &Path) {
    let aside = to.with_extension("partial");
    std::fs::copy(wsbox_testbed::guest(name), &aside).unwrap();
    std::fs::rename(&aside, to).unwrap();
}

/// A folder with `wsbox.toml` (one route `/` to `handler.wasm`, a copy
/// of echo) and the manifest's path.
fn deployed() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let handler = dir.path().join("handler.wasm");
    install("echo", &handler);
    let manifest = dir.path().join("wsbox.toml");
    std::fs::write(
        &manifest,
        "listen = \"127.0.0.1:0\"\n\n[[route]]\npath = \"/\"\ncomponent = \"handler.wasm\"\n",
    )
    .unwrap();
    (dir, manifest, handler)
}

async fn connect(url: &str) -> Client {
    within("the connection", tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .0
}

/// Echoes `text`, closes with 1000 and gives the code the handler
/// answered: 1000 from echo, 4000 from close-reporter.
async fn echo_then_close(ws: &mut Client, text: &str) -> Option<u16> {
    within("the send", ws.send(Message::text(text)))
        .await
        .unwrap();
    let echo = within("the echo", ws.next()).await.unwrap().unwrap();
    assert_eq!(echo, Message::text(text));
    let close = CloseFrame {
        code: 1000.into(),
        reason: "done".into(),
    };
    within("our close", ws.send(Message::Close(Some(close))))
        .await
        .unwrap();
    loop {
        match within("the answer to our close", ws.next()).await {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

fn args<'a>(list: &'a [&'a str], manifest: &'a Path) -> Vec<&'a OsStr> {
    list.iter()
        .map(OsStr::new)
        .chain([manifest.as_os_str()])
        .collect()
}

/// Rewrites the component, asks for a reload with `reload` and waits for
/// `wsbox serve` to say how it went, in one line.
async fn reload_with(
    serving: &support::Serving,
    reload: &dyn Fn(&support::Serving),
    needle: &str,
) -> String {
    reload(serving);
    let line = tokio::task::block_in_place(|| serving.stderr_line(needle));
    assert!(!line.contains('\n'));
    line
}

async fn old_and_new_versions_side_by_side(watch: bool) {
    let (_dir, manifest, handler) = deployed();
    let flags: &[&str] = if watch {
        &["serve", "--watch", "--config"]
    } else {
        &["serve", "--config"]
    };
    let serving = serve(&args(flags, &manifest));
    let url = format!("{}/v", serving.url);
    let mut before = connect(&url).await;
    let signal: &dyn Fn(&support::Serving) = if watch {
        &|_| {}
    } else {
        &|s| s.signal("-HUP")
    };

    install("close-reporter", &handler);
    let line = reload_with(&serving, signal, "reloaded").await;
    let why = if watch {
        "a watched file changed"
    } else {
        "SIGHUP"
    };
    assert!(line.contains(why), "{line}");
    let mut after = connect(&url).await;
    assert_eq!(echo_then_close(&mut before, "old").await, Some(1000));
    assert_eq!(echo_then_close(&mut after, "new").await, Some(4000));

    // A broken component: one line, and close-reporter stays in service.
    let aside = handler.with_extension("partial");
    std::fs::write(&aside, b"\0asm garbage").unwrap();
    std::fs::rename(&aside, &handler).unwrap();
    let line = reload_with(&serving, signal, "refused").await;
    assert!(
        line.contains("handler.wasm") && line.contains("the previous version stays in service"),
        "{line}"
    );
    let mut later = connect(&url).await;
    assert_eq!(echo_then_close(&mut later, "still").await, Some(4000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_without_dropping_connections() {
    old_and_new_versions_side_by_side(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reloads_when_the_component_changes() {
    old_and_new_versions_side_by_side(true).await;
}

#[test]
fn check_validates_the_manifest_and_its_components() {
    let (_dir, manifest, handler) = deployed();
    let check = |what: &str| {
        output_within(
            Command::new(env!("CARGO_BIN_EXE_wsbox"))
                .args(["serve", "--check", "--config"])
                .arg(&manifest),
            what,
        )
    };
    let out = check("wsbox serve --check");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("wsbox.toml can serve (1 route)"),
        "{stdout}"
    );

    // A component that does not compile: --check compiles, so it fails.
    std::fs::write(&handler, b"\0asm\x01\0\0\0garbage").unwrap();
    let out = check("wsbox serve --check, broken component");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("handler.wasm"), "{stderr}");

    // An unknown key: one line naming the file, the line and the key.
    install("echo", &handler);
    std::fs::write(
        &manifest,
        "[[route]]\npath = \"/\"\ncomponent = \"handler.wasm\"\ncompnent = \"x\"\n",
    )
    .unwrap();
    let out = check("wsbox serve --check, unknown key");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("wsbox.toml line 4") && stderr.contains("key `compnent`"),
        "{stderr}"
    );

    // Per-component flags are refused with --config, saying where to put
    // them.
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_wsbox"))
            .args(["serve", "--allow-origin", "https://a.example", "--config"])
            .arg(&manifest),
        "wsbox serve --allow-origin --config",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("in each [[route]]"), "{stderr}");
}

/// A reload that changes the routes: the new path is served, the removed
/// one gets 404, and a connection opened before on the removed route goes
/// on with its handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_and_removes_routes() {
    let dir = tempfile::tempdir().unwrap();
    install("echo", &dir.path().join("echo.wasm"));
    install("close-reporter", &dir.path().join("reporter.wasm"));
    let manifest = dir.path().join("wsbox.toml");
    let write_manifest = |route: &str, component: &str| {
        let aside = manifest.with_extension("partial");
        std::fs::write(
            &aside,
            format!(
                "listen = \"127.0.0.1:0\"\n\n[[route]]\npath = \"{route}\"\ncomponent = \
                 \"{component}\"\n"
            ),
        )
        .unwrap();
        std::fs::rename(&aside, &manifest).unwrap();
    };
    write_manifest("/old", "echo.wasm");
    let serving = serve(&args(&["serve", "--config"], &manifest));
    let mut before = connect(&format!("{}/old", serving.url)).await;
    within("the first echo", before.send(Message::text("first")))
        .await
        .unwrap();
    let echo = within("the first echo", before.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echo, Message::text("first"));

    write_manifest("/new", "reporter.wasm");
    let line = reload_with(&serving, &|s| s.signal("-HUP"), "reloaded").await;
    assert!(line.contains("SIGHUP"), "{line}");

    let mut new = connect(&format!("{}/new", serving.url)).await;
    assert_eq!(echo_then_close(&mut new, "new").await, Some(4000));
    let refused = within(
        "the upgrade on the removed route",
        tokio_tungstenite::connect_async(format!("{}/old", serving.url)),
    )
    .await;
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("the removed route was not refused with 404: {other:?}"),
    }
    assert_eq!(echo_then_close(&mut before, "old").await, Some(1000));
}

/// Writes to `to` a copy of sample guest `name` that compiles and links
/// but cannot be instantiated: the first data segment of its main core
/// module is moved to offset -1 (4 GiB - 1), past the end of any memory.
/// The offset's LEB128 keeps its length, so the file stays well formed.
fn uninstantiable(name: &str, to: &Path) {
    fn leb(bytes: &[u8], mut at: usize) -> (u64, usize) {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let byte = bytes[at];
            at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte < 0x80 {
                return (value, at);
            }
        }
    }
    /// The sections of a module or component body after its 8-byte
    /// header: (id, start of content, end).
    fn sections(bytes: &[u8], from: usize, to: usize) -> Vec<(u8, usize, usize)> {
        let mut found = Vec::new();
        let mut at = from + 8;
        while at < to {
            let (size, start) = leb(bytes, at + 1);
            found.push((bytes[at], start, start + size as usize));
            at = start + size as usize;
        }
        found
    }
    let mut bytes = std::fs::read(wsbox_testbed::guest(name)).unwrap();
    let (_, module, module_end) = sections(&bytes, 0, bytes.len())
        .into_iter()
        .find(|s| s.0 == 1)
        .expect("a core module");
    let (_, data, _) = sections(&bytes, module, module_end)
        .into_iter()
        .find(|s| s.0 == 11)
        .expect("a data section");
    let (_, at) = leb(&bytes, data); // the segment count
    let (flags, at) = leb(&bytes, at);
    assert_eq!(
        (flags, bytes[at]),
        (0, 0x41),
        "an active segment at i32.const"
    );
    let (_, end) = leb(&bytes, at + 1);
    for byte in &mut bytes[at + 1..end - 1] {
        *byte = 0xff;
    }
    bytes[end - 1] = 0x7f;
    std::fs::write(to, bytes).unwrap();
}

/// A component that compiles but cannot be instantiated is refused by
/// `--check` (exit 2, one line naming it) and by a reload (one line; the
/// previous version stays in service).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_cannot_be_instantiated_is_refused() {
    let (dir, manifest, handler) = deployed();
    let broken = dir.path().join("broken.wasm");
    uninstantiable("close-reporter", &broken);

    let check = |what: &str| {
        output_within(
            Command::new(env!("CARGO_BIN_EXE_wsbox"))
                .args(["serve", "--check", "--config"])
                .arg(&manifest),
            what,
        )
    };
    std::fs::copy(&broken, &handler).unwrap();
    let out = check("wsbox serve --check, a component that cannot be instantiated");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot instantiate") && stderr.contains("handler.wasm"),
        "{stderr}"
    );

    install("echo", &handler);
    let serving = serve(&args(&["serve", "--config"], &manifest));
    let url = format!("{}/v", serving.url);
    let aside = handler.with_extension("partial");
    std::fs::copy(&broken, &aside).unwrap();
    std::fs::rename(&aside, &handler).unwrap();
    let line = reload_with(&serving, &|s| s.signal("-HUP"), "refused").await;
    assert!(
        line.contains("cannot instantiate")
            && line.contains("handler.wasm")
            && line.contains("the previous version stays in service"),
        "{line}"
    );
    let mut after = connect(&url).await;
    assert_eq!(echo_then_close(&mut after, "still echo").await, Some(1000));
}
