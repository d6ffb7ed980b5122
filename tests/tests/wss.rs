//! wss:// with rustls: a server whose certificate chains to a CA the configuration names is trusted; without that CA the connect fails with connect-failed.

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wsbox::{Config, Policy};
use wsbox_tests::{probe_with, within};

struct TlsEcho {
    port: u16,
    ca_pem: String,
    seen: mpsc::UnboundedReceiver<String>,
}

/// A tokio-tungstenite echo server behind TLS, for `localhost`, with a
/// certificate signed by a CA generated for this test.
async fn tls_echo() -> TlsEcho {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(e) => return drop(tx.send(format!("tls error: {e}"))),
                };
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() {
                        let _ = tx.send(format!("message: {}", msg.to_text().unwrap()));
                        let _ = ws.send(msg).await;
                    }
                }
            });
        }
    });
    TlsEcho {
        port,
        ca_pem: ca.pem(),
        seen,
    }
}

#[tokio::test]
async fn wss_works_with_the_configured_ca_and_fails_without_it() {
    let mut server = tls_echo().await;
    let dir = std::env::temp_dir().join(format!("wsbox-wss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &server.ca_pem).unwrap();
    let url = format!("wss://localhost:{}/", server.port);
    let policy = Policy::from_patterns(&[format!("wss://localhost:{}", server.port)]).unwrap();

    let trusted = Config {
        policy: policy.clone(),
        tls: Some(wsbox::client_config_with_ca(&ca_file).unwrap()),
        ..Config::default()
    };
    let out = probe_with(trusted, &url, &["send-text:over tls", "recv", "close:1000"]).await;
    assert_eq!(out.result("connect"), "ok protocol=none");
    assert_eq!(out.result("recv"), r#"ok(text "over tls")"#);
    assert_eq!(out.result("close:1000"), "ok");
    assert_eq!(
        within("the TLS server's report", server.seen.recv())
            .await
            .unwrap(),
        "message: over tls"
    );

    let untrusted = Config {
        policy,
        ..Config::default()
    };
    let out = probe_with(untrusted, &url, &[]).await;
    assert!(
        out.result("connect").starts_with("err(connect-failed: TLS"),
        "{}",
        out.result("connect")
    );
    assert!(within("the TLS server's report", server.seen.recv())
        .await
        .unwrap()
        .starts_with("tls error"));
    std::fs::remove_dir_all(dir).unwrap();
}
