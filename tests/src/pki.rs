//! A test PKI for `wss://` on the listening side: a CA made in the test
//! (`rcgen`), a leaf for `localhost` and `127.0.0.1` signed by it, as PEM
//! files, and clients that trust only that CA.

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A tokio-tungstenite client over TLS.
pub type TlsClient = tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>;

/// A CA and a server certificate it signed, in a temporary folder.
pub struct TestPki {
    /// The folder holding the PEM files.
    pub dir: tempfile::TempDir,
    /// The server's chain: its certificate, then the CA's.
    pub cert: PathBuf,
    /// The server's private key (PKCS#8).
    pub key: PathBuf,
    /// The CA certificate alone.
    pub ca: PathBuf,
    ca_der: CertificateDer<'static>,
    /// The base64 SHA-256 of the CA's SubjectPublicKeyInfo, as Chromium's
    /// `--ignore-certificate-errors-spki-list` takes it.
    pub ca_spki_sha256: String,
}

impl TestPki {
    /// A fresh CA and a leaf for `localhost` and `127.0.0.1`.
    pub fn new() -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "wsbox test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let cert = write("server.crt", format!("{}{}", leaf.pem(), ca.pem()));
        let key = write("server.key", leaf_key.serialize_pem());
        let ca_path = write("ca.crt", ca.pem());
        let digest = ring::digest::digest(&ring::digest::SHA256, &ca_key.public_key_der());
        TestPki {
            cert,
            key,
            ca: ca_path,
            ca_der: ca.der().clone(),
            ca_spki_sha256: base64::engine::general_purpose::STANDARD.encode(digest.as_ref()),
            dir,
        }
    }

    /// The listening side's TLS, read from the PEM files as `wsbox serve
    /// --tls-cert --tls-key` does.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        wsbox::tls_server_config(&self.cert, &self.key).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A client configuration that trusts only the CA, and offers ALPN
    /// `h2` and `http/1.1`.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Connects tokio-tungstenite to `wss://localhost:PORT{path}` (TCP to
    /// 127.0.0.1), trusting only the CA, within [`crate::WAIT`].
    pub async fn connect(&self, port: u16, path: &str) -> TlsClient {
        let connect = async {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
            let tls = tokio_rustls::TlsConnector::from(self.client_config())
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await?;
            let url = format!("wss://localhost:{port}{path}");
            let (ws, _) = tokio_tungstenite::client_async(url, tls)
                .await
                .map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(ws)
        };
        crate::within("a wss:// connection", connect)
            .await
            .unwrap_or_else(|e| panic!("wss://localhost:{port}{path}: {e}"))
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}
