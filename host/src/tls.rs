//! TLS for `wss://`: rustls with the webpki roots plus the configured CA file.

use crate::config::Config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// The rustls client configuration for `config`, built once per CA file.
pub(crate) fn client_config(config: &Config) -> Result<Arc<ClientConfig>, String> {
    static CACHE: OnceLock<Mutex<HashMap<Option<PathBuf>, Arc<ClientConfig>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache
        .lock()
        .map_err(|e| e.to_string())?
        .get(&config.ca_file)
    {
        return Ok(found.clone());
    }
    let built = Arc::new(build(config)?);
    cache
        .lock()
        .map_err(|e| e.to_string())?
        .insert(config.ca_file.clone(), built.clone());
    Ok(built)
}

fn build(config: &Config) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &config.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot load CA file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "CA file {} holds no PEM certificate",
                path.display()
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Checks that the CA file, if any, loads; for start-up errors.
pub(crate) fn check(config: &Config) -> crate::Result<()> {
    client_config(config)
        .map(drop)
        .map_err(|reason| crate::Error::CaFile {
            path: config
                .ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            reason,
        })
}
