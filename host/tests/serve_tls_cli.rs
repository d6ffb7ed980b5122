//! `wsbox serve --tls-cert --tls-key` as a process: it says `wss://` and serves TLS clients that trust the certificate's CA, with `--metrics` on its own listener, and so does a manifest's `[tls]` and `metrics`; a bad or mismatched certificate or key is one line at start-up and exit 2.

mod support;

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::ServerName;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use support::{output_within, serve, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tungstenite::Message;

/// A CA, a leaf for `localhost` it signed (chain in `server.crt`, key in
/// `server.key`), and a key of another pair (`other.key`).
struct Files {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
}

impl Files {
    fn new() -> Files {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        write("server.crt", format!("{}{}", leaf.pem(), ca.pem()));
        write("server.key", key.serialize_pem());
        write("other.key", KeyPair::generate().unwrap().serialize_pem());
        write("garbage.crt", "not a certificate\n".into());
        Files { dir, ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn refused(files: &Files, cert: &str, key: &str) -> String {
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_wsbox"))
            .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(files.path(cert))
            .arg("--tls-key")
            .arg(files.path(key))
            .arg(wsbox_testbed::guest("echo")),
        "wsbox serve with a bad certificate or key",
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty(), "it never listened");
    stderr
}

#[test]
fn a_bad_or_mismatched_certificate_or_key_is_one_line_and_exit_2() {
    let files = Files::new();
    let line = refused(&files, "server.crt", "other.key");
    assert!(
        line.contains("other.key does not match the certificate"),
        "{line}"
    );
    let line = refused(&files, "garbage.crt", "server.key");
    assert!(
        line.contains("garbage.crt holds no PEM certificate"),
        "{line}"
    );
    let line = refused(&files, "server.key", "server.crt");
    assert!(line.contains("swapped"), "{line}");
    let line = refused(&files, "missing.crt", "server.key");
    assert!(
        line.contains("missing.crt") && line.contains("--tls-cert"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_listens_on_wss_and_serves_clients_that_trust_the_ca() {
    let files = Files::new();
    let (cert, key) = (files.path("server.crt"), files.path("server.key"));
    let echo = wsbox_testbed::guest("echo");
    let serving = serve(&[
        OsStr::new("serve"),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--metrics"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--tls-cert"),
        cert.as_os_str(),
        OsStr::new("--tls-key"),
        key.as_os_str(),
        echo.as_os_str(),
    ]);
    assert!(
        serving.url.starts_with("wss://127.0.0.1:"),
        "{}",
        serving.url
    );
    let metrics = serving
        .stdout
        .recv_timeout(support::WAIT)
        .expect("the metrics line");
    assert!(
        metrics.starts_with("wsbox serve: metrics on http://127.0.0.1:"),
        "{metrics}"
    );

    echo_over_wss(&files, serving.port, "secure").await;
}

/// Connects to `wss://localhost:PORT/` trusting only the files' CA, and
/// checks that `text` is echoed.
async fn echo_over_wss(files: &Files, port: u16, text: &str) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(files.ca.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = within("TCP", tokio::net::TcpStream::connect(("127.0.0.1", port)))
        .await
        .unwrap();
    let tls = within(
        "TLS",
        tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .unwrap();
    let url = format!("wss://localhost:{port}/");
    let (mut ws, _) = within("the upgrade", tokio_tungstenite::client_async(url, tls))
        .await
        .unwrap();
    within("the send", ws.send(Message::text(text)))
        .await
        .unwrap();
    let echo = within("the echo", ws.next()).await.unwrap().unwrap();
    assert_eq!(echo, Message::text(text));
}

/// The body of `GET /metrics` from `address` (`HOST:PORT`).
async fn scrape(address: &str) -> String {
    let mut tcp = within(
        "the metrics listener",
        tokio::net::TcpStream::connect(address),
    )
    .await
    .unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    within("the metrics request", tcp.write_all(request.as_bytes()))
        .await
        .unwrap();
    let mut response = String::new();
    within("the metrics", tcp.read_to_string(&mut response))
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

/// The value of the sample `name` (with its labels) in a metrics text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

/// A manifest's `[tls]` and `metrics` keys are served as the flags are:
/// `wss://` with the PEM files named relative to the manifest, and
/// `/metrics` on the address given (port 0: the one bound, as the
/// `metrics on` line says), counting the `wss://` upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_serves_its_tls_and_metrics() {
    let files = Files::new();
    std::fs::copy(wsbox_testbed::guest("echo"), files.path("echo.wasm")).unwrap();
    let manifest = files.path("wsbox.toml");
    std::fs::write(
        &manifest,
        "listen = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n\n[tls]\ncert = \"server.crt\"\n\
         key = \"server.key\"\n\n[[route]]\npath = \"/\"\ncomponent = \"echo.wasm\"\n",
    )
    .unwrap();
    let serving = serve(&[
        OsStr::new("serve"),
        OsStr::new("--config"),
        manifest.as_os_str(),
    ]);
    assert!(
        serving.url.starts_with("wss://127.0.0.1:"),
        "{}",
        serving.url
    );
    let metrics = serving
        .stdout
        .recv_timeout(support::WAIT)
        .expect("the metrics line");
    let address = metrics
        .strip_prefix("wsbox serve: metrics on http://")
        .unwrap_or_else(|| panic!("{metrics}"))
        .to_string();
    assert!(!address.ends_with(":0"), "{address}");

    let upgrades = r#"wsbox_upgrades_total{status="101"}"#;
    assert_eq!(sample(&scrape(&address).await, upgrades), None);
    echo_over_wss(&files, serving.port, "from the manifest").await;
    let text = scrape(&address).await;
    assert_eq!(sample(&text, upgrades), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, r#"wsbox_connections_total{route="/"}"#),
        Some(1.0),
        "{text}"
    );
}
