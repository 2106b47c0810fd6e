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
        .map_err(|err| {
            anyhow::anyhow!("api.cert_file and api.key_file do not go together: {err}")
        })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server)))
}

/// The first certificate of a PEM file: the listener's own, which the local client pins.
pub fn first_certificate(path: &Path) -> anyhow::Result<CertificateDer<'static>> {
    Ok(read_chain(path)?.remove(0))
}

/// A client configuration that accepts exactly `pinned` as the server's certificate (its
/// signatures still checked), whatever names it carries: the CLI reaches its own daemon on
/// loopback, where the certificate may be issued for the machine's public name.
pub fn pinned_client(pinned: CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned {
        pinned,
        algorithms: provider.signature_verification_algorithms,
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(config)
}

#[derive(Debug)]
struct Pinned {
    pinned: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
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
