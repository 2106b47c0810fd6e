//! A throwaway PKI for the tests: a CA made in the test, a server certificate for 127.0.0.1 and a
//! client certificate, written as PEM files the way an administrator would install them.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

pub struct Pki {
    pub ca_pem: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The CA's certificate, for a server that checks client certificates.
    pub ca_der: Vec<u8>,
    pub server_cert_der: Vec<u8>,
    pub server_key_der: Vec<u8>,
    /// The server certificate and key as PEM files (the key 0600), for socwatch as a TLS server.
    pub server_pem: PathBuf,
    pub server_key_pem: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    /// Makes the CA and both certificates, and writes the files the client side needs into `dir`.
    pub fn new(dir: &Path) -> Pki {
        let ca = ca("socwatch test CA");
        let server_key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "receiver");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &ca).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "socwatch portal-01");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &ca).unwrap();

        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca_pem: write("ca.pem", &ca.pem()),
            client_cert: write("client.pem", &client_cert.pem()),
            client_key: {
                // A private key is a secret file: mode 0600, or socwatch refuses it.
                use std::os::unix::fs::PermissionsExt;
                let key = write("client.key", &client_key.serialize_pem());
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
                key
            },
            server_pem: write("server.pem", &server_cert.pem()),
            server_key_pem: {
                use std::os::unix::fs::PermissionsExt;
                let key = write("server.key", &server_key.serialize_pem());
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
                key
            },
            ca_der: ca.der().to_vec(),
            server_cert_der: server_cert.der().to_vec(),
            server_key_der: server_key.serialize_der(),
        }
    }
}
