//! Unit tests of the TLS files: keys and certificates that serve, and one clear line for each broken file.

use super::*;
use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair, SignatureAlgorithm};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const WAIT: Duration = Duration::from_secs(10);
/// `rcgen` on `ring` cannot make RSA keys: a fixed one (see
/// `testdata/README.md`).
const RSA_PKCS8: &str = include_str!("../testdata/test-only-rsa-2048.pem");

/// A CA, and a leaf for `localhost` signed by it with `leaf_key`.
struct Pki {
    ca: Certificate,
    leaf: Certificate,
    leaf_key: KeyPair,
}

fn pki(leaf_key: KeyPair) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    Pki { ca, leaf, leaf_key }
}

fn generated(alg: &'static SignatureAlgorithm) -> KeyPair {
    KeyPair::generate_for(alg).unwrap()
}

fn rsa() -> KeyPair {
    KeyPair::from_pem(RSA_PKCS8).unwrap()
}

/// The key inside a PKCS#8 `PrivateKeyInfo`: PKCS#1 for RSA, SEC1 for
/// EC (RFC 5208: SEQUENCE { version, algorithm, OCTET STRING key, .. }).
fn inner_key(pkcs8: &[u8]) -> Vec<u8> {
    fn element(der: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = der[0];
        let (len, head) = match der[1] {
            n if n < 0x80 => (n as usize, 2),
            n => {
                let bytes = (n & 0x7f) as usize;
                let len = der[2..2 + bytes]
                    .iter()
                    .fold(0usize, |acc, &b| acc << 8 | b as usize);
                (len, 2 + bytes)
            }
        };
        (tag, &der[head..head + len], &der[head + len..])
    }
    let (_, body, _) = element(pkcs8);
    let (_, _version, rest) = element(body);
    let (_, _algorithm, rest) = element(rest);
    let (tag, key, _) = element(rest);
    assert_eq!(tag, 0x04, "an OCTET STRING holds the key");
    key.to_vec()
}

fn pem_of(label: &str, der: &[u8]) -> String {
    ::pem::encode(&::pem::Pem::new(label, der.to_vec()))
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Serves one TLS connection with `config` on loopback; a client that
/// trusts only `ca` connects, checks ALPN and echoes a line.
async fn handshake(config: Arc<ServerConfig>, ca: &Certificate) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = TlsAcceptor::from(config).accept(tcp).await.unwrap();
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await.unwrap();
        tls.write_all(&buf).await.unwrap();
        tls.shutdown().await.unwrap();
    });
    let client = async {
        let mut tls = connect(address, ca).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        tls.write_all(b"hello").await.unwrap();
        let mut echoed = Vec::new();
        tls.read_to_end(&mut echoed).await.unwrap();
        assert_eq!(echoed, b"hello");
    };
    tokio::time::timeout(WAIT, client).await.unwrap();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
}

/// A TLS client that trusts only `ca` and offers ALPN `h2` and `http/1.1`,
/// connected to `address` as `localhost`.
async fn connect(
    address: std::net::SocketAddr,
    ca: &Certificate,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let mut client =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(address).await?;
    TlsConnector::from(Arc::new(client))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// A root CA, an intermediate CA it signed, and a leaf for `localhost`
/// signed by the intermediate, with the leaf's key.
fn three_level_pki() -> (Certificate, Certificate, Certificate, KeyPair) {
    // Distinct names, or a verifier takes the root for the leaf's issuer.
    let ca_params = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params
    };
    let root_key = KeyPair::generate().unwrap();
    let root = ca_params("wsbox test root").self_signed(&root_key).unwrap();
    let intermediate_key = KeyPair::generate().unwrap();
    let intermediate = ca_params("wsbox test intermediate")
        .signed_by(&intermediate_key, &root, &root_key)
        .unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &intermediate, &intermediate_key)
        .unwrap();
    (root, intermediate, leaf, leaf_key)
}

/// The intermediates after the leaf in the PEM file are sent: a client
/// that trusts only the root verifies leaf + intermediate, and fails to
/// verify the leaf alone (so it is the served chain that closes the gap).
#[tokio::test]
async fn the_intermediates_in_the_pem_file_are_sent() {
    let (root, intermediate, leaf, leaf_key) = three_level_pki();
    let dir = tempfile::tempdir().unwrap();
    let key_path = write(&dir, "key.pem", &leaf_key.serialize_pem());
    let chain = write(
        &dir,
        "chain.pem",
        &format!("{}{}", leaf.pem(), intermediate.pem()),
    );
    handshake(server_config(&chain, &key_path).unwrap(), &root).await;

    let leaf_only = write(&dir, "leaf.pem", &leaf.pem());
    let config = server_config(&leaf_only, &key_path).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        TlsAcceptor::from(config).accept(tcp).await.map(drop)
    });
    let Err(err) = tokio::time::timeout(WAIT, connect(address, &root))
        .await
        .unwrap()
    else {
        panic!("a client that trusts only the root verified a leaf sent without its intermediate");
    };
    let refused = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    assert!(
        matches!(
            refused,
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "{err:?}"
    );
    let server = tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
    assert!(server.is_err(), "the server saw the client's alert");
}

/// Each key format serves a real TLS handshake from a client that
/// trusts only the CA.
#[tokio::test]
async fn every_key_format_serves() {
    let ec = || generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    type Encode = fn(&KeyPair) -> String;
    let cases: Vec<(&str, KeyPair, Encode)> = vec![
        ("ECDSA P-256, PKCS#8", ec(), |k| k.serialize_pem()),
        (
            "ECDSA P-384, PKCS#8",
            generated(&rcgen::PKCS_ECDSA_P384_SHA384),
            |k| k.serialize_pem(),
        ),
        ("Ed25519, PKCS#8", generated(&rcgen::PKCS_ED25519), |k| {
            k.serialize_pem()
        }),
        ("EC, SEC1", ec(), |k| {
            pem_of("EC PRIVATE KEY", &inner_key(k.serialized_der()))
        }),
        ("RSA, PKCS#8", rsa(), |k| k.serialize_pem()),
        ("RSA, PKCS#1", rsa(), |k| {
            pem_of("RSA PRIVATE KEY", &inner_key(k.serialized_der()))
        }),
    ];
    for (what, key, encode) in cases {
        let dir = tempfile::tempdir().unwrap();
        let key_pem = encode(&key);
        let pki = pki(key);
        let chain = format!("{}{}", pki.leaf.pem(), pki.ca.pem());
        let cert_path = write(&dir, "chain.pem", &chain);
        let key_path = write(&dir, "key.pem", &key_pem);
        let config = server_config(&cert_path, &key_path).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()], "{what}");
        handshake(config, &pki.ca).await;
    }
}

/// The certificate and the key may share one file.
#[tokio::test]
async fn one_file_with_both() {
    let pki = pki(generated(&rcgen::PKCS_ECDSA_P256_SHA256));
    let dir = tempfile::tempdir().unwrap();
    let both = format!(
        "{}{}{}",
        pki.leaf_key.serialize_pem(),
        pki.leaf.pem(),
        pki.ca.pem()
    );
    let path = write(&dir, "both.pem", &both);
    handshake(server_config(&path, &path).unwrap(), &pki.ca).await;
}

/// Asserts that each broken pair (what, certificate text, key text, words)
/// is refused in one line that holds every word. Every message names the
/// file it blames.
fn assert_refused(cases: Vec<(&str, String, String, &[&str])>) {
    for (what, cert_text, key_text, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let cert_path = write(&dir, "cert.pem", &cert_text);
        let key_path = write(&dir, "key.pem", &key_text);
        let err = server_config(&cert_path, &key_path)
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"))
            .to_string();
        assert!(!err.contains('\n'), "{what}: not one line: {err}");
        for word in words {
            assert!(err.contains(word), "{what}: {err:?} lacks {word:?}");
        }
    }
}

/// A key for another certificate, the CA first, or the two files swapped.
#[test]
fn a_certificate_and_key_that_do_not_belong_together_are_one_clear_line() {
    let good = pki(generated(&rcgen::PKCS_ECDSA_P256_SHA256));
    let leaf = good.leaf.pem();
    let key = good.leaf_key.serialize_pem();
    let other = generated(&rcgen::PKCS_ECDSA_P256_SHA256);
    let ca_first = format!("{}{}", good.ca.pem(), good.leaf.pem());
    assert_refused(vec![
        (
            "mismatched",
            leaf.clone(),
            other.serialize_pem(),
            &[
                "key.pem does not match the certificate",
                "cert.pem",
                "--tls-key",
            ],
        ),
        (
            "CA before the leaf",
            ca_first,
            key.clone(),
            &["does not match", "comes first in", "cert.pem"],
        ),
        (
            "swapped",
            key.clone(),
            leaf.clone(),
            &["cert.pem holds no PEM certificate", "swapped"],
        ),
    ]);
}

/// A certificate file that holds no usable certificate.
#[test]
fn broken_certificates_are_one_clear_line() {
    let good = pki(generated(&rcgen::PKCS_ECDSA_P256_SHA256));
    let leaf = good.leaf.pem();
    let key = good.leaf_key.serialize_pem();
    let not_der = pem_of("CERTIFICATE", b"not a certificate");
    assert_refused(vec![
        (
            "empty certificate",
            String::new(),
            key.clone(),
            &["cert.pem holds no PEM certificate", "--tls-cert"],
        ),
        (
            "garbage certificate",
            "this is not PEM at all\n".into(),
            key.clone(),
            &["cert.pem holds no PEM certificate"],
        ),
        (
            "broken base64",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".into(),
            key.clone(),
            &["cert.pem is not valid PEM", "base64"],
        ),
        (
            "cut-off PEM",
            leaf[..leaf.len() / 2].to_string(),
            key.clone(),
            &["cert.pem is not valid PEM", "END"],
        ),
        (
            "not a certificate inside",
            not_der,
            key.clone(),
            &["cert.pem is not a valid X.509 certificate", "--tls-cert"],
        ),
    ]);
}

/// A key file that holds no usable key.
#[test]
fn broken_keys_are_one_clear_line() {
    let good = pki(generated(&rcgen::PKCS_ECDSA_P256_SHA256));
    let leaf = good.leaf.pem();
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert_refused(vec![
        (
            "empty key",
            leaf.clone(),
            String::new(),
            &["key.pem: it holds no PEM private key", "--tls-key"],
        ),
        (
            "garbage key",
            leaf.clone(),
            "\u{0}\u{1}garbage".into(),
            &["key.pem: it holds no PEM private key"],
        ),
        (
            "encrypted key",
            leaf.clone(),
            encrypted.into(),
            &["key.pem is encrypted", "openssl pkey"],
        ),
        (
            "key bytes that are no key",
            leaf.clone(),
            pem_of("PRIVATE KEY", b"0123456789"),
            &["key.pem cannot be used", "--tls-key"],
        ),
    ]);
}

#[test]
fn missing_files_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.pem");
    let pki = pki(generated(&rcgen::PKCS_ECDSA_P256_SHA256));
    let key = write(&dir, "key.pem", &pki.leaf_key.serialize_pem());
    let cert = write(&dir, "cert.pem", &pki.leaf.pem());
    let err = server_config(&missing, &key).unwrap_err().to_string();
    assert!(
        err.contains("cannot read the TLS certificate")
            && err.contains("nowhere.pem")
            && err.contains("--tls-cert"),
        "{err}"
    );
    let err = server_config(&cert, &missing).unwrap_err().to_string();
    assert!(
        err.contains("cannot read the TLS key")
            && err.contains("nowhere.pem")
            && err.contains("--tls-key"),
        "{err}"
    );
}
