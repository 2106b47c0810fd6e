//! Backlog drain (issue 5): 100,000 alerts queued while the national endpoint is down, then the
//! real forwarder against a real HTTPS receiver on loopback (test CA, client certificate checked).
//! Prints the enqueue rate, the drain rate, and checks that every (incident id, revision) arrived
//! and in revision order per incident. `SOCWATCH_BENCH_ALERTS` changes the backlog size,
//! `SOCWATCH_BENCH_BATCH` the batch size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use jiff::{SignedDuration, Timestamp};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use socwatch::alerting::{Destination, NATIONAL, OutboxPolicy};
use socwatch::correlate::{Change, incident_id};
use socwatch::metrics::Metrics;
use socwatch::model::{Evidence, Incident, Severity, Status};
use socwatch::outputs::Signals;
use socwatch::outputs::national::{NationalSender, SenderInfo, run};
use socwatch::store::Store;
use tokio_rustls::rustls;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn incident(n: u64, at: Timestamp) -> Incident {
    let ip = format!("203.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
    Incident {
        id: incident_id("ssh-bruteforce", std::slice::from_ref(&ip), at, 0),
        case_id: String::new(),
        rule_id: "ssh-bruteforce".into(),
        title: "SSH password brute force".into(),
        title_vi: Some("Dò mật khẩu SSH".into()),
        severity: Severity::High,
        status: Status::Open,
        first_seen: at,
        last_seen: at,
        count: 5,
        group: [("src_ip".to_string(), ip.clone())].into(),
        host: "portal-01".into(),
        system: "dvc-portal".into(),
        level: 3,
        unit: "So KH&CN".into(),
        tags: vec!["attack.credential_access".into(), "attack.t1110.001".into()],
        author: None,
        evidence: (0..5)
            .map(|i| Evidence {
                ts: at,
                source: "/var/log/auth.log".into(),
                line: format!(
                    "Nov 22 10:01:0{i} portal-01 sshd[811]: Failed password for root from {ip} port 51514 ssh2"
                ),
            })
            .collect(),
        evidence_omitted: 0,
        history: Vec::new(),
        revision: 1,
    }
}

struct Tls {
    server: rustls::ServerConfig,
    ca_pem: String,
    client_pem: String,
    client_key: String,
}

fn tls() -> Tls {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
    Tls {
        server,
        ca_pem: ca.pem(),
        client_pem: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

#[derive(Default)]
struct Received {
    alerts: usize,
    /// Highest revision seen per incident, and how many arrived below it (out of order).
    last: HashMap<String, u64>,
    out_of_order: usize,
}

fn main() {
    let alerts = env("SOCWATCH_BENCH_ALERTS", 100_000);
    let batch = env("SOCWATCH_BENCH_BATCH", 100);
    let incidents = alerts.div_ceil(4) as u64;
    let dir = tempfile::tempdir().unwrap();
    let policy = OutboxPolicy {
        destinations: vec![Destination {
            name: NATIONAL.into(),
            min_severity: Severity::Medium,
            every_change: true,
            per_case: false,
        }],
        cap: alerts * 2,
    };
    let store = Arc::new(Store::open(dir.path().join("data"), policy).unwrap());

    // The endpoint is down: four alerts per incident (opened, then counts 10, 100, 1,000) queue.
    let at: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
    let made: Vec<Incident> = (0..incidents).map(|n| incident(n, at)).collect();
    let started = Instant::now();
    for chunk in made.chunks(2048) {
        let opened: Vec<Change> = chunk
            .iter()
            .map(|i| Change::Opened(Box::new(i.clone())))
            .collect();
        store.apply(&opened, &[]).unwrap();
        for count in [10, 100, 1000] {
            let updates: Vec<Change> = chunk
                .iter()
                .map(|i| Change::Updated {
                    id: i.id.clone(),
                    rule: 0,
                    count,
                    last_seen: at + SignedDuration::from_secs(count as i64),
                    evidence: Some(i.evidence[0].clone()),
                })
                .collect();
            store.apply(&updates, &[]).unwrap();
        }
        store.flush().unwrap();
    }
    let queued = store.outbox_depth(NATIONAL);
    let enqueue = started.elapsed();
    println!(
        "queued {queued} alerts for {incidents} incidents in {:.2}s ({:.0} alerts/s, with the incident writes); store {:.1} MB",
        enqueue.as_secs_f64(),
        queued as f64 / enqueue.as_secs_f64(),
        store.size_on_disk().unwrap() as f64 / 1e6
    );

    // The endpoint comes back.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tls = tls();
    let received = Arc::new(Mutex::new(Received::default()));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls.server));
    let counter = received.clone();
    runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let counter = counter.clone();
                        async move {
                            let body = request.into_body().collect().await?.to_bytes();
                            let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
                            let mut seen = counter.lock().unwrap();
                            for alert in parsed["alerts"].as_array().unwrap() {
                                seen.alerts += 1;
                                let id = alert["id"].as_str().unwrap().to_string();
                                let revision = alert["revision"].as_u64().unwrap();
                                let last = seen.last.entry(id).or_insert(0);
                                let in_order = revision > *last;
                                *last = (*last).max(revision);
                                if !in_order {
                                    seen.out_of_order += 1;
                                }
                            }
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::new())))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let config: socwatch::config::Config = toml::from_str(&format!(
        "[forward.national]\nurl = \"https://127.0.0.1:{port}/alerts\"\nca_file = \"{}\"\n\
         client_cert = \"{}\"\nclient_key = \"{}\"\nbatch_max = {batch}\n",
        write("ca.pem", &tls.ca_pem).display(),
        write("client.pem", &tls.client_pem).display(),
        {
            use std::os::unix::fs::PermissionsExt;
            let key = write("client.key", &tls.client_key);
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            key
        }
        .display(),
    ))
    .unwrap();
    let sender = NationalSender::from_config(
        config.forward.national.as_ref().unwrap(),
        SenderInfo {
            unit: "So KH&CN".into(),
            host: "portal-01".into(),
            agent_version: "bench".into(),
        },
        &socwatch::security::Trust::new(dir.path()),
    )
    .unwrap();
    let signals = Signals::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let task = runtime.spawn(run(
        sender,
        store.clone(),
        signals.add(),
        Arc::new(Metrics::default()),
        stopped,
    ));
    while store.outbox_depth(NATIONAL) > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let drain = started.elapsed();
    stop.send(true).unwrap();
    runtime.block_on(task).unwrap();
    let seen = received.lock().unwrap();
    println!(
        "drained {} alerts in batches of {batch} over HTTPS with mutual TLS in {:.2}s: {:.0} alerts/s; {} incidents heard of, {} alerts out of revision order",
        seen.alerts,
        drain.as_secs_f64(),
        seen.alerts as f64 / drain.as_secs_f64(),
        seen.last.len(),
        seen.out_of_order
    );
    assert_eq!(
        seen.alerts as u64, queued,
        "every queued alert arrived once"
    );
    assert_eq!(seen.last.len() as u64, incidents);
    assert_eq!(seen.out_of_order, 0, "revision order per incident");
}
