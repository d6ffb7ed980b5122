//! TLS for `wss://` clients: a rustls client configuration with the webpki
//! roots, plus CA certificates of the embedder's choosing.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The configuration a guest's `wss://` connects use when the embedder
/// gives none: the webpki roots, built once.
pub(crate) fn default_client_config() -> Arc<ClientConfig> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(build(Vec::new()))).clone()
}

/// A client configuration that trusts the webpki roots and the PEM
/// certificates in `ca_file` (what `--ca-file` gives). Errors name the file
/// and what is wrong with it.
pub fn client_config_with_ca(ca_file: &Path) -> crate::Result<Arc<ClientConfig>> {
    let fail = |reason: String| crate::Error::CaFile {
        path: ca_file.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(ca_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail(
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let mut roots = RootCertStore::empty();
    for cert in &certs {
        roots.add(cert.clone()).map_err(|e| fail(e.to_string()))?;
    }
    Ok(Arc::new(build(certs)))
}

fn build(extra: Vec<CertificateDer<'static>>) -> ClientConfig {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // Checked by the caller: each of these parses.
    roots.add_parsable_certificates(extra);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
