//! Email alerts against a real SMTP server on 127.0.0.1 (Debian's python3-aiosmtpd, started per
//! test on a kernel-chosen port): STARTTLS with AUTH, implicit TLS, plain to loopback, refusals,
//! hostile log lines, and a flood through the flood gate.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::Value;
use socwatch::config::Config;
use socwatch::model::{Evidence, Incident, Lang, Severity, Status};
use socwatch::outputs::email::{
    Admission, FloodGate, Mailer, RenderContext, SendError, render_alert, render_digest,
};
use socwatch::security::Trust;

use crate::support::crate_dir;

const USER: &str = "soc-alerts";
const PASSWORD: &str = "mật khẩu đúng";

/// A test CA and a server certificate for 127.0.0.1 and localhost, as PEM files.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "socwatch test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// One aiosmtpd process; killed when dropped.
pub(crate) struct SmtpServer {
    child: Child,
    pub(crate) port: u16,
    out: tempfile::TempDir,
}

impl SmtpServer {
    pub(crate) fn start(mode: &str, pki: &Pki, auth: bool) -> SmtpServer {
        Self::start_with(mode, pki, auth, None)
    }

    /// A server that defers every message (451) until the file `until` exists.
    pub(crate) fn start_refusing(mode: &str, pki: &Pki, until: &Path) -> SmtpServer {
        Self::start_with(mode, pki, false, Some(until))
    }

    fn start_with(mode: &str, pki: &Pki, auth: bool, refuse_until: Option<&Path>) -> SmtpServer {
        let out = tempfile::tempdir().unwrap();
        let mut command = Command::new("/usr/bin/python3");
        // Debian's python3-aiosmtpd is importable only by the system interpreter.
        command
            .arg(crate_dir().join("tests/support/smtp_server.py"))
            .args(["--mode", mode, "--out"])
            .arg(out.path())
            .arg("--cert")
            .arg(pki.path("cert.pem"))
            .arg("--key")
            .arg(pki.path("key.pem"));
        if auth {
            command.args(["--user", USER, "--password", PASSWORD]);
        }
        if let Some(until) = refuse_until {
            command.arg("--refuse-until").arg(until);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run /usr/bin/python3 (apt-get install python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = match line.trim().parse() {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let output = child.wait_with_output().unwrap();
                panic!(
                    "the SMTP test server did not start (is python3-aiosmtpd installed?): {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        };
        SmtpServer { child, port, out }
    }

    /// Waits (polling, with a deadline) until `n` messages arrived, and returns them in order.
    pub(crate) fn messages(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = received(self.out.path());
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} messages arrived",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn received(dir: &Path) -> Vec<Value> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// The `[email]` section as an operator writes it, parsed and validated like the daemon's config.
fn email_config(security: &str, port: u16, extra: &str) -> socwatch::config::Email {
    let text = format!(
        "[email]\nsmtp = \"127.0.0.1:{port}\"\nsecurity = \"{security}\"\nfrom = \"Trung tâm giám sát <soc-alerts@example.gov.vn>\"\nto = [\"soc-oncall@example.gov.vn\", \"Trực ban <truc-ban@example.gov.vn>\"]\n{extra}"
    );
    Config::parse("socwatch.toml", &text)
        .unwrap_or_else(|problems| panic!("{problems:?}"))
        .email
        .unwrap()
}

/// A password file as an operator would leave it (mode 600), read through the secret reader.
fn password(dir: &Path, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("smtp.password");
    std::fs::write(&path, format!("{text}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    socwatch::security::read_text(&path, "email.password_file", &Trust::new(dir)).unwrap()
}

fn authenticated_starttls(pki: &Pki, server: &SmtpServer, secret: &str) -> Mailer {
    let settings = email_config(
        "starttls",
        server.port,
        &format!(
            "username = \"{USER}\"\npassword_file = \"{}\"\nca_file = \"{}\"\n",
            pki.path("smtp.password").display(),
            pki.path("ca.pem").display()
        ),
    );
    Mailer::new(&settings, Some(password(pki.dir.path(), secret))).unwrap()
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn incident(n: usize, severity: Severity, line: &str) -> Incident {
    Incident {
        id: format!("01JD3V6X8Q4W0Z5N2K7M{n:06}"),
        case_id: String::new(),
        rule_id: "ssh-bruteforce".into(),
        title: "SSH password brute force".into(),
        title_vi: Some("Dò mật khẩu SSH".into()),
        severity,
        status: Status::Open,
        first_seen: ts("2026-11-22T03:01:02Z"),
        last_seen: ts("2026-11-22T03:03:40Z"),
        count: 17,
        group: BTreeMap::from([("src_ip".to_string(), format!("203.0.113.{}", n % 250))]),
        host: "portal-01".into(),
        system: "dvc-portal".into(),
        level: 3,
        unit: "Sở KH&CN tỉnh X".into(),
        tags: vec!["attack.credential_access".into()],
        author: None,
        evidence: vec![Evidence {
            ts: ts("2026-11-22T03:01:02Z"),
            source: "/var/log/auth.log".into(),
            line: line.into(),
        }],
        evidence_omitted: 16,
        history: Vec::new(),
        revision: 1,
    }
}

fn ctx(lang: Lang) -> RenderContext {
    RenderContext {
        lang,
        unit: "Sở KH&CN tỉnh X".into(),
        host: "portal-01".into(),
        checkpoint: None,
    }
}

fn header<'a>(message: &'a Value, name: &str) -> Vec<&'a str> {
    message["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|pair| pair[1].as_str().unwrap())
        .collect()
}

/// A body part as received, with the wire's CRLF line endings made LF.
pub(crate) fn body(message: &Value, part: &str) -> String {
    message[part].as_str().unwrap().replace("\r\n", "\n")
}

const SSH_LINE: &str = "Nov 22 10:01:02 portal-01 sshd[811]: Failed password for root from 203.0.113.7 port 51514 ssh2";

#[tokio::test]
async fn email_over_starttls_with_auth_arrives_with_its_headers() {
    let pki = Pki::new();
    let server = SmtpServer::start("starttls", &pki, true);
    let mailer = authenticated_starttls(&pki, &server, PASSWORD);
    let email = render_alert(&incident(7, Severity::High, SSH_LINE), &ctx(Lang::Vi));
    mailer.send(&email).await.unwrap();

    let message = &server.messages(1)[0];
    assert_eq!(message["tls"], true, "{message}");
    assert_eq!(message["authenticated"], true);
    assert_eq!(message["mail_from"], "soc-alerts@example.gov.vn");
    assert_eq!(
        message["rcpt_tos"],
        serde_json::json!(["soc-oncall@example.gov.vn", "truc-ban@example.gov.vn"])
    );
    // The Vietnamese subject went out RFC 2047-encoded and decodes to what was rendered.
    assert_eq!(
        message["subject"],
        "[socwatch][Cao] Dò mật khẩu SSH từ 203.0.113.7 - portal-01 (dvc-portal, cấp độ 3)"
    );
    let raw = message["raw"].as_str().unwrap();
    let head = &raw[..raw.find("\r\n\r\n").unwrap()].replace("\r\n ", " ");
    // On the wire the subject is RFC 2047 encoded words: ASCII only.
    let subject_line = head
        .split("\r\n")
        .find(|l| l.starts_with("Subject: "))
        .unwrap();
    assert!(
        subject_line.is_ascii() && subject_line.contains("=?utf-8?b?"),
        "{subject_line}"
    );
    assert_eq!(
        header(message, "From"),
        ["Trung tâm giám sát <soc-alerts@example.gov.vn>"]
    );
    assert_eq!(
        header(message, "To"),
        ["soc-oncall@example.gov.vn, Trực ban <truc-ban@example.gov.vn>"]
    );
    let date = header(message, "Date");
    assert_eq!(date.len(), 1);
    assert!(
        jiff::fmt::rfc2822::parse(date[0]).is_ok(),
        "bad Date {date:?}"
    );
    let id = header(message, "Message-ID");
    assert!(
        id.len() == 1 && id[0].starts_with("<socwatch.") && id[0].ends_with("@example.gov.vn>"),
        "{id:?}"
    );
    assert_eq!(header(message, "Auto-Submitted"), ["auto-generated"]);
    assert_eq!(message["content_type"], "multipart/alternative");
    let text = &body(message, "text");
    assert!(!text.contains('\r'), "{text}");
    assert!(text.contains("Lần đầu:  22/11/2026 10:01\n"), "{text}");
    assert!(text.contains("socwatch incidents ack 01JD3V6X8Q4W0Z5N2K7M000007\n"));
    let html = message["html"].as_str().unwrap();
    assert!(html.contains("Sở KH&amp;CN tỉnh X"), "{html}");
    assert!(html.contains("Failed password for root from 203.0.113.7"));
}

#[tokio::test]
async fn email_with_a_wrong_password_fails_for_good() {
    let pki = Pki::new();
    let server = SmtpServer::start("starttls", &pki, true);
    let mailer = authenticated_starttls(&pki, &server, "sai mật khẩu");
    let email = render_alert(&incident(1, Severity::High, SSH_LINE), &ctx(Lang::En));
    let err: SendError = mailer.send(&email).await.unwrap_err();
    assert!(!err.retriable, "{err:?}");
    assert!(err.message.contains("535"), "{err}");
    assert!(received(server.out.path()).is_empty());
}

#[tokio::test]
async fn email_to_a_server_that_is_down_is_retried() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mailer = Mailer::new(&email_config("none", port, ""), None).unwrap();
    let email = render_alert(&incident(1, Severity::High, SSH_LINE), &ctx(Lang::En));
    let err = mailer.send(&email).await.unwrap_err();
    assert!(err.retriable, "{err:?}");
    assert!(err.message.starts_with("smtp 127.0.0.1:"), "{err}");
}

#[tokio::test]
async fn email_never_falls_back_to_plain_text_when_starttls_is_required() {
    let pki = Pki::new();
    let server = SmtpServer::start("none", &pki, false);
    let settings = email_config(
        "starttls",
        server.port,
        &format!("ca_file = \"{}\"\n", pki.path("ca.pem").display()),
    );
    let mailer = Mailer::new(&settings, None).unwrap();
    let email = render_alert(&incident(1, Severity::High, SSH_LINE), &ctx(Lang::En));
    let err = mailer.send(&email).await.unwrap_err();
    assert!(err.message.to_lowercase().contains("starttls"), "{err}");
    assert!(received(server.out.path()).is_empty());
}

#[tokio::test]
async fn email_refuses_a_certificate_from_an_unknown_ca() {
    let pki = Pki::new();
    let server = SmtpServer::start("tls", &pki, false);
    // No ca_file: the test CA is not among the built-in roots.
    let mailer = Mailer::new(&email_config("tls", server.port, ""), None).unwrap();
    let email = render_alert(&incident(1, Severity::High, SSH_LINE), &ctx(Lang::En));
    let err = mailer.send(&email).await.unwrap_err();
    assert!(err.message.contains("certificate"), "{err}");
    assert!(received(server.out.path()).is_empty());
}

#[tokio::test]
async fn email_over_implicit_tls_arrives() {
    let pki = Pki::new();
    let server = SmtpServer::start("tls", &pki, true);
    let settings = email_config(
        "tls",
        server.port,
        &format!(
            "username = \"{USER}\"\npassword_file = \"/unused\"\nca_file = \"{}\"\n",
            pki.path("ca.pem").display()
        ),
    );
    let mailer = Mailer::new(&settings, Some(PASSWORD.into())).unwrap();
    let email = render_alert(&incident(3, Severity::Critical, SSH_LINE), &ctx(Lang::En));
    mailer.send(&email).await.unwrap();
    let message = &server.messages(1)[0];
    assert_eq!(message["tls"], true);
    assert_eq!(message["authenticated"], true);
    assert_eq!(
        message["subject"],
        "[socwatch][Critical] SSH password brute force from 203.0.113.3 - portal-01 (dvc-portal, level 3)"
    );
}

#[tokio::test]
async fn email_in_plain_text_to_loopback_arrives() {
    let pki = Pki::new();
    let server = SmtpServer::start("none", &pki, false);
    let mailer = Mailer::new(&email_config("none", server.port, ""), None).unwrap();
    let email = render_alert(&incident(4, Severity::Medium, SSH_LINE), &ctx(Lang::En));
    mailer.send(&email).await.unwrap();
    let message = &server.messages(1)[0];
    assert_eq!(message["tls"], false);
    assert_eq!(message["rcpt_tos"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn email_with_a_hostile_log_line_arrives_inert() {
    let pki = Pki::new();
    let server = SmtpServer::start("starttls", &pki, true);
    let mailer = authenticated_starttls(&pki, &server, PASSWORD);
    let hostile = "Failed password for x\r\nBcc: victim@example.com\r\n<script>alert(1)</script>";
    let mut incident = incident(5, Severity::High, hostile);
    incident
        .group
        .insert("user".into(), "x\r\nBcc: victim@example.com".into());
    incident.title_vi = Some("Dò mật khẩu\r\nBcc: victim@example.com".into());
    let email = render_alert(&incident, &ctx(Lang::Vi));
    mailer.send(&email).await.unwrap();

    let message = &server.messages(1)[0];
    // No header was added and nobody else got it.
    assert!(header(message, "Bcc").is_empty(), "{message}");
    assert!(header(message, "Cc").is_empty());
    assert_eq!(message["rcpt_tos"].as_array().unwrap().len(), 2);
    let subject = message["subject"].as_str().unwrap();
    assert!(!subject.contains(['\r', '\n']), "{subject:?}");
    let raw = message["raw"].as_str().unwrap();
    let head = &raw[..raw.find("\r\n\r\n").unwrap()];
    assert!(!head.to_lowercase().contains("\nbcc:"), "{head}");
    // The text part keeps the line as one line with visible escapes.
    let text = &body(message, "text");
    assert!(!text.contains('\r'), "{text}");
    assert!(
        text.contains(
            "Failed password for x\\r\\nBcc: victim@example.com\\r\\n<script>alert(1)</script>\n"
        ),
        "{text}"
    );
    assert!(!text.lines().any(|l| l.starts_with("Bcc:")), "{text}");
    // The HTML part shows the markup as text.
    let html = message["html"].as_str().unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
}

/// 500 incidents in one (simulated) hour through render, the flood gate and the real server: at
/// most N emails in any hour, and every incident reaches the operator alone or in a digest.
#[tokio::test]
async fn email_flood_of_500_incidents_is_bounded_and_digested() {
    let pki = Pki::new();
    let server = SmtpServer::start("starttls", &pki, true);
    let mailer = authenticated_starttls(&pki, &server, PASSWORD);
    let settings = email_config("none", 25, "max_per_hour = 5\n");
    let limit = *settings.max_per_hour.get_ref();
    let mut gate = FloodGate::new(limit, settings.flood_window());
    let incidents: Vec<Incident> = (0..500)
        .map(|n| incident(n, Severity::ALL[n % 5], SSH_LINE))
        .collect();
    let start = ts("2026-11-22T03:00:00Z");
    let at = |secs: i64| start + jiff::SignedDuration::from_secs(secs);

    // The delivery loop, with time given: a due digest first, then the incident.
    let mut sent_at: Vec<i64> = Vec::new();
    let mut alone = Vec::new();
    let mut digests: Vec<(u64, Vec<String>)> = Vec::new();
    let send_digest = |gate: &mut FloodGate,
                       now: i64,
                       sent_at: &mut Vec<i64>,
                       digests: &mut Vec<(u64, Vec<String>)>| {
        let digest = gate.pending_digest().unwrap();
        let folded: Vec<Incident> = incidents
            .iter()
            .filter(|i| digest.incident_ids.contains(&i.id))
            .cloned()
            .collect();
        let email = render_digest(
            &folded,
            digest.folded_total as usize,
            digest.first_folded,
            digest.last_folded,
            &ctx(Lang::Vi),
        );
        gate.record_digest_sent(&digest, at(now));
        sent_at.push(now);
        digests.push((digest.folded_total, digest.incident_ids.clone()));
        email
    };
    for (n, incident) in incidents.iter().enumerate() {
        let now = n as i64 * 7;
        if gate.digest_due(at(now)) {
            let email = send_digest(&mut gate, now, &mut sent_at, &mut digests);
            mailer.send(&email).await.unwrap();
        }
        if gate.admit(&incident.id, at(now)) == Admission::Send {
            mailer
                .send(&render_alert(incident, &ctx(Lang::Vi)))
                .await
                .unwrap();
            gate.record_sent(at(now));
            sent_at.push(now);
            alone.push(incident.id.clone());
        }
    }
    while let Some(next) = gate.next_digest_at() {
        let now = next.duration_since(start).as_secs();
        let email = send_digest(&mut gate, now, &mut sent_at, &mut digests);
        mailer.send(&email).await.unwrap();
    }

    let messages = server.messages(sent_at.len());
    assert_eq!(messages.len(), sent_at.len());
    assert_eq!(alone.len(), limit - 1);
    for window_start in &sent_at {
        let in_hour = sent_at
            .iter()
            .filter(|t| (*window_start..window_start + 3600).contains(*t))
            .count();
        assert!(in_hour <= limit, "{in_hour} emails in an hour: {sent_at:?}");
    }
    let folded: u64 = digests.iter().map(|(total, _)| total).sum();
    assert_eq!(alone.len() as u64 + folded, 500);
    // Each digest arrived and lists its incidents (up to its row cap), most severe first.
    let digest_messages: Vec<&Value> = messages
        .iter()
        .filter(|m| m["subject"].as_str().unwrap().contains("[Tổng hợp]"))
        .collect();
    assert_eq!(digest_messages.len(), digests.len());
    for (message, (total, ids)) in digest_messages.iter().zip(&digests) {
        let subject = message["subject"].as_str().unwrap();
        assert!(subject.contains(&format!("] {total} sự cố")), "{subject}");
        let text = message["text"].as_str().unwrap();
        let listed = ids.iter().filter(|id| text.contains(id.as_str())).count();
        assert_eq!(
            listed,
            ids.len()
                .min(socwatch::outputs::email::render::MAX_DIGEST_ROWS)
        );
        assert!(message["html"].as_str().unwrap().contains(&ids[0]));
    }
}

/// `socwatch run` with an `[email]` section: incidents go through the outbox and the flood gate
/// to the real SMTP server; a burst beyond the limit arrives as one digest, and the gate holds
/// across a restart.
#[test]
fn socwatch_run_mails_new_incidents_and_folds_a_burst_into_one_digest() {
    use std::os::unix::fs::PermissionsExt;
    let pki = Pki::new();
    let server = SmtpServer::start("starttls", &pki, true);
    let site = crate::daemon::Site::new(false);
    let password_file = site.path("smtp.password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // 3 emails per 8 s: two alerts alone, then the rest of the burst in a digest 8/3 s later; the
    // restart below must happen within the same 8 s window for the last check to mean something.
    site.add_config(&format!(
        "[email]\nsmtp = \"127.0.0.1:{}\"\nsecurity = \"starttls\"\nusername = \"{USER}\"\n\
         password_file = \"{}\"\nca_file = \"{}\"\nfrom = \"socwatch <soc-alerts@example.gov.vn>\"\n\
         to = [\"soc-oncall@example.gov.vn\"]\nmin_severity = \"high\"\nmax_per_hour = 3\nflood_window = \"8s\"\ncase_hold = \"0s\"\n",
        server.port,
        password_file.display(),
        pki.path("ca.pem").display(),
    ));
    let daemon = site.start();
    let addresses: Vec<String> = (1..=20).map(|n| format!("203.0.113.{n}")).collect();
    site.append(
        addresses
            .iter()
            .enumerate()
            .map(|(n, a)| crate::daemon::line(n, a)),
    );
    daemon.wait_for(20);
    let messages = server.messages(3);
    assert_eq!(messages.len(), 3, "two alerts and one digest");
    let mut mentioned = std::collections::BTreeSet::new();
    // Each address is its own case: a case email names the case (title and address).
    for alone in &messages[..2] {
        let subject = alone["subject"].as_str().unwrap();
        assert!(
            subject.starts_with("[socwatch][High] every attempt (203.0.113.")
                && subject.ends_with(") - portal-01 (dvc-portal)"),
            "{subject}"
        );
        let ip = subject
            .split([' ', '(', ')'])
            .find(|w| w.starts_with("203.0.113."))
            .unwrap();
        mentioned.insert(ip.to_string());
    }
    let digest = body(&messages[2], "text");
    for address in &addresses {
        if digest.contains(&format!("{address} ")) || digest.contains(&format!("{address}\n")) {
            mentioned.insert(address.clone());
        }
    }
    assert_eq!(
        mentioned.len(),
        20,
        "every incident is in an alert or the digest: {digest}"
    );
    daemon.stop();

    // A restart does not hand out a fresh allowance: the next incident waits for a digest.
    let daemon = site.start();
    site.append([crate::daemon::line(20, "198.51.100.1")]);
    daemon.wait_for(21);
    let messages = server.messages(4);
    let last = &messages[3];
    assert!(
        body(last, "text").contains("198.51.100.1"),
        "the newcomer comes in a digest, after the window frees up: {last}"
    );
    assert!(
        !last["subject"]
            .as_str()
            .unwrap()
            .contains("every attempt (198.51.100.1)"),
        "{last}"
    );
    daemon.stop();
}
