//! The listening side's TLS: a rustls server configuration from a PEM certificate chain and key.
//!
//! The certificate file holds the server's own certificate first, then its
//! intermediates (other PEM sections, such as a key, are skipped). The key
//! file holds one unencrypted private key: PKCS#8 (`PRIVATE KEY`), PKCS#1
//! (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`); it may be the same file
//! as the certificate. The server offers ALPN `http/1.1`, the protocol a
//! WebSocket upgrade runs on.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::Path;
use std::sync::Arc;

/// Why the certificate or key cannot serve: one line that names the file
/// and says the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// The rustls server configuration for `cert` (a PEM chain, the server's
/// own certificate first) and `key` (its PEM private key), with ALPN
/// `http/1.1`.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_chain(cert)?;
    let key_der = load_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    check_key(&provider, &key_der, key)?;
    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            TlsError(format!(
                "rustls refused its own default protocol versions: {e}"
            ))
        })?
        .with_no_client_auth();
    let mut config = builder
        .with_single_cert(chain, key_der)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError(format!(
                "the TLS key {} does not match the certificate {}: give --tls-key the private key \
                 of the certificate that comes first in {} (the server's own, before its \
                 intermediates)",
                key.display(),
                cert.display(),
                cert.display()
            )),
            other => TlsError(format!(
                "the first certificate in {} is not a valid X.509 certificate ({other}): give \
                 --tls-cert the server's PEM certificate, then its intermediates",
                cert.display()
            )),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path, what: &str, flag: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| {
        TlsError(format!(
            "cannot read the TLS {what} {}: {e}; check the {flag} path",
            path.display()
        ))
    })
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path, "certificate", "--tls-cert")?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsError(format!(
                "the TLS certificate {} is not valid PEM ({}): give --tls-cert a PEM file with \
                 the server's certificate, then its intermediates",
                path.display(),
                pem_problem(&e)
            ))
        })?;
    if chain.is_empty() {
        let hint = if has_key_section(&bytes) {
            " (it holds a private key: are --tls-cert and --tls-key swapped?)"
        } else {
            ""
        };
        return Err(TlsError(format!(
            "the TLS certificate {} holds no PEM certificate (-----BEGIN CERTIFICATE-----){hint}: \
             give --tls-cert a PEM file with the server's certificate, then its intermediates",
            path.display()
        )));
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path, "key", "--tls-key")?;
    if contains(&bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(TlsError(format!(
            "the TLS key {} is encrypted, and wsbox reads only unencrypted keys: decrypt it, e.g. \
             `openssl pkey -in {} -out server.key`, and give --tls-key the result",
            path.display(),
            path.display()
        )));
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let problem = match &e {
            pem::Error::NoItemsFound if contains(&bytes, b"-----BEGIN CERTIFICATE-----") => {
                "it holds no private key, only a certificate: are --tls-cert and --tls-key swapped?"
                    .to_string()
            }
            pem::Error::NoItemsFound => "it holds no PEM private key".to_string(),
            other => format!("it is not valid PEM ({})", pem_problem(other)),
        };
        TlsError(format!(
            "the TLS key {}: {problem}; give --tls-key the certificate's private key as PEM \
             (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            path.display()
        ))
    })
}

/// Whether the key is one rustls can sign with, so that a key of an
/// unsupported kind is not reported as a bad certificate.
fn check_key(
    provider: &CryptoProvider,
    key: &PrivateKeyDer<'static>,
    path: &Path,
) -> Result<(), TlsError> {
    provider
        .key_provider
        .load_private_key(key.clone_key())
        .map(drop)
        .map_err(|e| {
            TlsError(format!(
                "the TLS key {} cannot be used ({e}): give --tls-key an RSA (2048 bits or more), \
                 ECDSA P-256 or P-384, or Ed25519 private key",
                path.display()
            ))
        })
}

fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no -----END----- line".into(),
        pem::Error::IllegalSectionStart { .. } => "a -----BEGIN----- line is malformed".into(),
        pem::Error::Base64Decode(_) => "a section is not valid base64".into(),
        other => other.to_string(),
    }
}

fn has_key_section(bytes: &[u8]) -> bool {
    contains(bytes, b"PRIVATE KEY-----")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests;
