//! Alerts to the national endpoint, against a real HTTPS receiver on 127.0.0.1 port 0: a server
//! certificate from a CA made in the test, client certificates checked, a bearer token checked,
//! and answers the test switches between 200, 500, 429 with Retry-After, a hang, a dropped
//! connection and a permanent refusal, while the real `socwatch run` is killed and restarted.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio_rustls::rustls;

use super::daemon::{Daemon, Site, line};
use super::support::{socwatch, stdout};
use super::tls::Pki;

const TOKEN: &str = "national-secret-token";

/// How the receiver answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Accept,
    Fail500,
    TooMany,
    /// Reads the request and never answers.
    Hang,
    /// Reads the request and closes the connection without an answer.
    Drop,
    /// 422 for alerts of this incident count, 200 otherwise.
    RefuseCount(u64),
}

#[derive(Debug, Clone, PartialEq)]
struct Alert {
    id: String,
    revision: u64,
    reason: String,
    status: String,
    count: u64,
}

#[derive(Debug, Default)]
struct Seen {
    /// Requests per mode they were answered in.
    requests: BTreeMap<String, usize>,
    /// Every alert answered with 2xx, in arrival order.
    accepted: Vec<Alert>,
    idempotency_keys: Vec<String>,
    bad_requests: Vec<String>,
    /// The evidence checkpoint (signed note) each accepted request carried, if any.
    checkpoints: Vec<Option<String>>,
}

struct Receiver {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Seen>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(pki: &Pki, mode: Mode) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone().into()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![pki.server_cert_der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(pki.server_key_der.clone().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (mode_in, seen_in) = (mode.clone(), seen.clone());
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let (mode, seen) = (mode_in.clone(), seen_in.clone());
                tokio::spawn(async move {
                    // A client without a certificate from the CA fails here, before any HTTP.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        answer(request, mode.clone(), seen.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            mode,
            seen,
            _runtime: runtime,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn requests_in(&self, mode: Mode) -> usize {
        let key = format!("{mode:?}");
        self.seen
            .lock()
            .unwrap()
            .requests
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    /// Polls until `done` holds (the daemon works on its own clock; no fixed sleeps).
    fn wait_until(&self, what: &str, done: impl Fn(&Receiver) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(self) {
            assert!(Instant::now() < deadline, "waited 60 s for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Distinct (incident id, revision) pairs accepted, in first-arrival order per incident.
    fn accepted(&self) -> BTreeMap<String, Vec<Alert>> {
        let mut per_incident: BTreeMap<String, Vec<Alert>> = BTreeMap::new();
        let mut pairs = BTreeSet::new();
        for alert in &self.seen.lock().unwrap().accepted {
            if pairs.insert((alert.id.clone(), alert.revision)) {
                per_incident
                    .entry(alert.id.clone())
                    .or_default()
                    .push(alert.clone());
            }
        }
        per_incident
    }
}

type Answer = Result<Response<Full<Bytes>>, std::io::Error>;

async fn answer(
    request: Request<Incoming>,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Seen>>,
) -> Answer {
    let mode = *mode.lock().unwrap();
    let authorized = request
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let checkpoint = request
        .headers()
        .get("x-socwatch-checkpoint")
        .and_then(|v| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .ok()
        })
        .and_then(|note| String::from_utf8(note).ok());
    let content_type_ok = request
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/json");
    let body = request.into_body().collect().await.map(|b| b.to_bytes());
    *seen
        .lock()
        .unwrap()
        .requests
        .entry(format!("{mode:?}"))
        .or_default() += 1;
    let reply = |status: StatusCode, headers: &[(&str, &str)]| {
        let mut response = Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        Ok(response.body(Full::new(Bytes::new())).unwrap())
    };
    let Ok(body) = body else {
        return reply(StatusCode::BAD_REQUEST, &[]);
    };
    match mode {
        Mode::Fail500 => return reply(StatusCode::INTERNAL_SERVER_ERROR, &[]),
        Mode::TooMany => return reply(StatusCode::TOO_MANY_REQUESTS, &[("retry-after", "1")]),
        Mode::Hang => std::future::pending::<()>().await,
        Mode::Drop => return Err(std::io::Error::other("drop the connection")),
        Mode::Accept | Mode::RefuseCount(_) => {}
    }
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(err) => {
            seen.lock().unwrap().bad_requests.push(err.to_string());
            return reply(StatusCode::BAD_REQUEST, &[]);
        }
    };
    if !authorized || !content_type_ok || key.is_empty() || parsed["schema"] != "socwatch.alert.v1"
    {
        seen.lock().unwrap().bad_requests.push(format!(
            "auth {authorized} type {content_type_ok} key {key:?}"
        ));
        return reply(StatusCode::UNAUTHORIZED, &[]);
    }
    let alerts = parsed["alerts"].as_array().cloned().unwrap_or_default();
    if let Mode::RefuseCount(count) = mode
        && alerts.iter().any(|a| a["count"] == count)
    {
        return reply(StatusCode::UNPROCESSABLE_ENTITY, &[]);
    }
    let mut seen = seen.lock().unwrap();
    seen.idempotency_keys.push(key);
    seen.checkpoints.push(checkpoint);
    for alert in alerts {
        seen.accepted.push(Alert {
            id: alert["id"].as_str().unwrap_or("").to_string(),
            revision: alert["revision"].as_u64().unwrap_or(0),
            reason: alert["reason"].as_str().unwrap_or("").to_string(),
            status: alert["status"].as_str().unwrap_or("").to_string(),
            count: alert["count"].as_u64().unwrap_or(0),
        });
    }
    reply(StatusCode::OK, &[])
}

fn configure(site: &Site, pki: &Pki, receiver: &Receiver, batch_max: usize) {
    let token = site.path("national.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    site.add_config(&format!(
        "[forward.national]\nurl = \"https://127.0.0.1:{}/api/v1/alerts\"\ntoken_file = \"{}\"\n\
         ca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\nmin_severity = \"medium\"\n\
         batch_max = {batch_max}\ntimeout = \"2s\"\nretry_max = \"1s\"\n",
        receiver.addr.port(),
        token.display(),
        pki.ca_pem.display(),
        pki.client_cert.display(),
        pki.client_key.display(),
    ));
}

/// The site's config with the API address the running daemon actually bound (it was given port 0),
/// as the CLI needs it to reach the daemon.
fn cli_config(site: &Site, daemon: Option<&Daemon>) -> String {
    let path = site.path("socwatch-cli.toml");
    let config = std::fs::read_to_string(site.path("socwatch.toml")).unwrap();
    let api = daemon.map_or("127.0.0.1:0", |d| d.api.as_str());
    std::fs::write(
        &path,
        config.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{api}\"")),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn outbox_status(config: &str) -> serde_json::Value {
    let out = socwatch(&["--config", config, "outbox", "status", "--json"]);
    assert!(out.status.success(), "outbox status: {out:?}");
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn national(status: &serde_json::Value) -> serde_json::Value {
    status["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == "national")
        .cloned()
        .expect("national destination listed")
}

fn wait_for_empty_outbox(config: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = outbox_status(config);
        if national(&status)["pending"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "outbox not drained: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_alert_arrives_in_order_through_an_outage_and_a_kill_9() {
    let site = Site::new(false);
    let pki = Pki::new(site.path("").as_path());
    let receiver = Receiver::start(&pki, Mode::Fail500);
    configure(&site, &pki, &receiver, 10);
    let daemon = site.start();
    let cli = cli_config(&site, Some(&daemon));

    // The receiver is down (500): 12 addresses open 12 incidents, three of them reach count 10.
    let mut written = 0;
    let mut write = |site: &Site, addresses: std::ops::Range<usize>, times: usize| {
        for _ in 0..times {
            site.append(addresses.clone().map(|a| {
                written += 1;
                line(written, &format!("203.0.113.{a}"))
            }));
        }
        written as u64
    };
    write(&site, 1..13, 1);
    let total = write(&site, 1..4, 11);
    daemon.wait_for(total);
    receiver.wait_until("retries against a 500", |r| {
        r.requests_in(Mode::Fail500) >= 3
    });
    let status = outbox_status(&cli);
    assert!(
        national(&status)["pending"].as_u64().unwrap() >= 12,
        "{status}"
    );
    assert!(
        national(&status)["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{status}"
    );

    // 429 with Retry-After, then a receiver that never answers: kill -9 while the POST hangs.
    receiver.set(Mode::TooMany);
    receiver.wait_until("retries after a 429", |r| r.requests_in(Mode::TooMany) >= 2);
    receiver.set(Mode::Hang);
    receiver.wait_until("a hanging request", |r| r.requests_in(Mode::Hang) >= 1);
    daemon.kill9();

    // Restarted while the receiver drops connections; meanwhile more incidents, a count of 100,
    // and an acknowledgement (through the API with the shared token: recorded as "admin").
    receiver.set(Mode::Drop);
    let daemon = site.start();
    let cli = cli_config(&site, Some(&daemon));
    write(&site, 13..15, 1);
    let total = write(&site, 1..2, 89);
    daemon.wait_for(total);
    let first = super::support::incidents(&socwatch(&[
        "--config",
        &cli,
        "incidents",
        "list",
        "--json",
        "--field",
        "src_ip=203.0.113.5",
    ]));
    let acked_id = first[0]["id"].as_str().unwrap().to_string();
    let out = socwatch(&["--config", &cli, "incidents", "ack", &acked_id]);
    assert!(out.status.success(), "{out:?}");
    receiver.wait_until("a dropped connection", |r| r.requests_in(Mode::Drop) >= 1);

    receiver.set(Mode::Accept);
    wait_for_empty_outbox(&cli);
    let stored = super::support::incidents(&socwatch(&[
        "--config",
        &cli,
        "incidents",
        "list",
        "--json",
        "--limit",
        "1000",
    ]));
    daemon.stop();

    let accepted = receiver.accepted();
    assert!(receiver.seen.lock().unwrap().bad_requests.is_empty());
    assert_eq!(stored.len(), 14);
    assert_eq!(accepted.len(), 14, "an alert for every incident");
    for incident in &stored {
        let id = incident["id"].as_str().unwrap();
        let alerts = &accepted[id];
        let revisions: Vec<u64> = alerts.iter().map(|a| a.revision).collect();
        assert!(
            revisions.windows(2).all(|w| w[0] < w[1]),
            "{id}: revisions arrive in order: {revisions:?}"
        );
        assert_eq!(alerts[0].reason, "opened", "{id}: {alerts:?}");
        // Each milestone the incident passed (10, 100) was reported: by its own alert, or by an
        // alert raised in the same batch (the opening) that already carried the higher count.
        let count = incident["count"].as_u64().unwrap();
        for milestone in [10, 100].into_iter().filter(|m| *m <= count) {
            assert!(
                alerts.iter().any(|a| a.count >= milestone),
                "{id} (count {count}) never reported reaching {milestone}: {alerts:?}"
            );
        }
        if id == acked_id {
            assert!(
                alerts
                    .iter()
                    .any(|a| a.reason == "status_changed" && a.status == "acknowledged"),
                "{alerts:?}"
            );
        }
    }
    let status = outbox_status(&cli);
    assert_eq!(national(&status)["dead_letters"], 0, "{status}");
    assert!(national(&status)["delivered"].as_u64().unwrap() >= 15);
}

#[test]
fn a_refused_alert_becomes_a_dead_letter_without_holding_back_the_rest_and_retry_sends_it() {
    let site = Site::new(false);
    let pki = Pki::new(site.path("").as_path());
    // Alerts with count 1 are refused (422); the milestone alert (count 10) is accepted.
    let receiver = Receiver::start(&pki, Mode::RefuseCount(1));
    configure(&site, &pki, &receiver, 100);
    let daemon = site.start();
    let cli = cli_config(&site, Some(&daemon));
    site.append([line(0, "203.0.113.1")]);
    daemon.wait_for(1);
    receiver.wait_until("the refusal", |r| r.requests_in(Mode::RefuseCount(1)) >= 1);
    site.append((1..10).map(|n| line(n, "203.0.113.1")));
    daemon.wait_for(10);
    receiver.wait_until("the milestone alert", |r| {
        r.seen.lock().unwrap().accepted.len() == 1
    });
    let status = outbox_status(&cli);
    assert_eq!(national(&status)["dead_letters"], 1, "{status}");
    assert_eq!(national(&status)["pending"], 0, "{status}");
    let dead = &status["dead_letters"][0];
    assert_eq!(dead["revision"], 1);
    assert!(
        dead["error"].as_str().unwrap().contains("HTTP 422"),
        "{dead}"
    );
    let table = stdout(&socwatch(&[
        "--config", &cli, "--lang", "vi", "outbox", "status",
    ]));
    assert!(table.contains("Cảnh báo bị từ chối"), "{table}");
    assert!(table.contains("HTTP 422"), "{table}");

    receiver.set(Mode::Accept);
    let out = socwatch(&["--config", &cli, "outbox", "retry"]);
    assert!(out.status.success(), "{out:?}");
    receiver.wait_until("the retried alert", |r| {
        r.seen.lock().unwrap().accepted.len() == 2
    });
    let status = outbox_status(&cli);
    assert_eq!(national(&status)["dead_letters"], 0, "{status}");
    // Every delivery carried a checkpoint of the evidence log signed by the node's key, and the
    // log never shrinks between them.
    let key = stdout(&socwatch(&["--config", &cli, "verify", "--public-key"]));
    let verifier = socwatch::evidence::note::NoteVerifier::parse(key.trim()).unwrap();
    let sizes: Vec<u64> = receiver
        .seen
        .lock()
        .unwrap()
        .checkpoints
        .iter()
        .map(|note| {
            let note = note
                .as_deref()
                .expect("a checkpoint header on every delivery");
            verifier.open(note).unwrap().size
        })
        .collect();
    assert_eq!(sizes.len(), 2);
    assert!(sizes[0] >= 2 && sizes[1] >= sizes[0], "{sizes:?}");
    daemon.stop();
    let accepted = receiver.accepted();
    let revisions: Vec<(u64, String)> = accepted
        .values()
        .next()
        .unwrap()
        .iter()
        .map(|a| (a.revision, a.reason.clone()))
        .collect();
    assert_eq!(revisions[0].1, "count_milestone");
    assert_eq!(revisions[1], (1, "opened".to_string()));
}

#[test]
fn a_receiver_with_a_certificate_from_another_ca_gets_nothing_and_the_alerts_wait() {
    let site = Site::new(false);
    let pki = Pki::new(site.path("").as_path());
    let receiver = Receiver::start(&pki, Mode::Accept);
    configure(&site, &pki, &receiver, 100);
    // socwatch trusts only its configured private CA: point it at another one.
    let other = tempfile::tempdir().unwrap();
    let other_pki = Pki::new(other.path());
    std::fs::copy(&other_pki.ca_pem, &pki.ca_pem).unwrap();
    let daemon = site.start();
    let cli = cli_config(&site, Some(&daemon));
    site.append([line(0, "203.0.113.1")]);
    daemon.wait_for(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = outbox_status(&cli);
        if national(&status)["last_error"].is_string() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no delivery error recorded: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    daemon.stop();
    assert_eq!(national(&status)["pending"], 1, "{status}");
    assert!(receiver.seen.lock().unwrap().accepted.is_empty());
}
