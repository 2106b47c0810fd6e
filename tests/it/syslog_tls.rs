//! Syslog over TLS (RFC 5425) into the real daemon: a rustls client with certificates from a CA made
//! in the test sends octet-counted and newline-framed messages; with `client_ca_file`, clients
//! without a certificate, or with one from another CA, are refused and nothing of theirs is read.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::daemon::{Site, line};
use crate::tls::Pki;

/// A TLS connection to `addr` trusting `pki`'s CA, presenting `client` (certificate, key) if given.
fn connect(
    addr: &str,
    pki: &Pki,
    client: Option<&Pki>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(pki.ca_der.clone())).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(client) => {
            let certs = CertificateDer::pem_file_iter(&client.client_cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(&client.client_key).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("127.0.0.1").unwrap().to_owned();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

fn site_with_tls(pki: &Pki, client_ca: bool) -> Site {
    let site = Site::new(false);
    let mut section = format!(
        "\n[[source.syslog]]\nlisten = \"127.0.0.1:0\"\nprotocol = \"tls\"\nsystem = \"siem-relay\"\n\
         cert_file = \"{}\"\nkey_file = \"{}\"\n",
        pki.server_pem.display(),
        pki.server_key_pem.display()
    );
    if client_ca {
        section.push_str(&format!("client_ca_file = \"{}\"\n", pki.ca_pem.display()));
    }
    site.add_config(&section);
    site
}

/// Sends three octet-counted frames and two newline-framed ones on one connection.
fn send_mixed(stream: &mut impl Write, address: &str, first: usize) -> std::io::Result<()> {
    for n in first..first + 5 {
        let message = format!("<38>{}", line(n, address));
        if n < first + 3 {
            write!(stream, "{} {message}", message.len())?;
        } else {
            writeln!(stream, "{message}")?;
        }
    }
    stream.flush()
}

fn wait_logged(daemon: &crate::daemon::Daemon, text: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon.logged(text) < times {
        assert!(
            Instant::now() < deadline,
            "daemon never logged {text:?} {times} times"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tls_syslog_with_client_certificates_refuses_clients_without_one() {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::new(certs.path());
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = Pki::new(stranger_dir.path());
    let site = site_with_tls(&pki, true);
    let daemon = site.start();
    let addr = daemon
        .syslog_addr("tls")
        .expect("a tls listener")
        .to_string();

    let mut good = connect(&addr, &pki, Some(&pki));
    send_mixed(&mut good, "203.0.113.7", 1).unwrap();
    assert_eq!(daemon.wait_for(5), 1, "five messages, one incident");

    // No certificate, then one from a CA the listener does not trust: both refused. With TLS 1.3
    // the client learns it only when it reads, so it writes first, as a careless sender would.
    let mut anonymous = connect(&addr, &pki, None);
    let _ = send_mixed(&mut anonymous, "198.51.100.9", 10);
    wait_logged(&daemon, "syslog tls handshake failed", 1);
    let mut foreign = connect(&addr, &pki, Some(&stranger));
    let _ = send_mixed(&mut foreign, "198.51.100.10", 20);
    wait_logged(&daemon, "syslog tls handshake failed", 2);
    let mut buf = [0u8; 1];
    use std::io::Read;
    assert!(
        anonymous.read(&mut buf).is_err() || anonymous.read(&mut buf).ok() == Some(0),
        "the refused client's connection is closed"
    );

    // The trusted sender still gets through after them, and nothing of the refused ones arrived.
    send_mixed(&mut good, "203.0.113.7", 30).unwrap();
    assert_eq!(daemon.wait_for(10), 1);
    let incidents = daemon.client().list(&Default::default()).unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].system, "siem-relay");
}

#[test]
fn tls_syslog_without_client_ca_takes_any_client() {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::new(certs.path());
    let site = site_with_tls(&pki, false);
    let daemon = site.start();
    let addr = daemon
        .syslog_addr("tls")
        .expect("a tls listener")
        .to_string();
    let mut anonymous = connect(&addr, &pki, None);
    send_mixed(&mut anonymous, "203.0.113.8", 1).unwrap();
    assert_eq!(daemon.wait_for(5), 1);
}
