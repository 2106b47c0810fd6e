//! The listener's optional TLS (`api.cert_file`, `api.key_file`): the certificate chain and key read
//! into a rustls server configuration (HTTP/1.1, ring). The key is a secret file and goes through
//! the one secret reader.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;
use crate::security::{self, Trust};

/// The server configuration when `[api]` names a certificate and key, None when it names neither.
pub fn server_config(config: &Config) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let (Some(cert), Some(key)) = (&config.api.cert_file, &config.api.key_file) else {
        return Ok(None);
    };
    let trust = Trust::new(&config.daemon.data_dir);
    let chain = read_chain(cert.get_ref())?;
    let key_pem = security::read_bytes(key.get_ref(), "api.key_file", &trust)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| {
        anyhow::anyhow!(
            "api.key_file {}: no private key in it: {err}",
            key.get_ref().display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| anyhow::anyhow!("tls: {err}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|err| anyhow::anyhow!("api.cert_file and api.key_file do not go together: {err}"))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server)))
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .map_err(|err| anyhow::anyhow!("cannot read api.cert_file {}: {err}", path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow::anyhow!("api.cert_file {}: {err}", path.display()))?;
    if chain.is_empty() {
        anyhow::bail!("api.cert_file {}: no certificate in it", path.display());
    }
    Ok(chain)
}
