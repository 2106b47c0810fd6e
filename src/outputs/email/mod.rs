//! Email alerts: rendering (`render`), flood control (`flood`) and, here, the SMTP transport
//! (lettre over tokio and rustls) that sends a rendered email to the configured recipients.

pub mod deliver;
pub mod flood;
pub mod render;

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{self, EmailSecurity};

pub use flood::{Admission, FloodGate, PendingDigest};
pub use render::{RenderContext, RenderedEmail, render_alert, render_case, render_digest};

/// Connecting and each SMTP command; lettre's own default is 60 s.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// A whole send (connect, TLS, AUTH, DATA, QUIT): a server that trickles cannot hold the
/// delivery loop longer than this.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a mailer could not be built from the configuration (startup, not delivery).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailerError(String);

/// Why one email was not delivered. `retriable`: a 4xx answer, a connection, TLS or network
/// failure, a timeout; try again later. Otherwise the server refused for good (5xx: bad
/// password, unknown recipient) or the message could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub retriable: bool,
    pub message: String,
}

/// Sends rendered emails from `email.from` to `email.to` through `email.smtp`. Each send opens
/// its own connection: alerts are rare by design (flood control), and no pooled connection means
/// no background task and nothing that an idle server can half-close between alerts.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// Right-hand side of Message-IDs: the sender's domain.
    id_domain: String,
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the transport: it holds the SMTP password.
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Builds the transport for `settings`: STARTTLS required (`starttls`), TLS from the first byte
    /// (`tls`), or plain (`none`, which the config allows only to loopback). `password` is the
    /// content of `password_file` (read by [`crate::security::read_text`]); it is required when `username` is set.
    /// Reads `ca_file` when given. Needs no async runtime; sending does.
    pub fn new(settings: &config::Email, password: Option<String>) -> Result<Mailer, MailerError> {
        let server = settings.smtp.get_ref().clone();
        let (host, port) = server
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .filter(|(host, _)| !host.is_empty())
            .ok_or_else(|| MailerError(format!("email.smtp must be host:port, got '{server}'")))?;
        // `[::1]:25`: the brackets belong to the address syntax, not to the host.
        let host = host.trim_start_matches('[').trim_end_matches(']');

        let from: Mailbox = settings
            .from
            .get_ref()
            .parse()
            .map_err(|err| MailerError(format!("email.from: bad address: {err}")))?;
        let to = settings
            .to
            .get_ref()
            .iter()
            .map(|to| {
                to.parse::<Mailbox>()
                    .map_err(|err| MailerError(format!("email.to: bad address '{to}': {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(MailerError(
                "email.to must name at least one recipient".into(),
            ));
        }

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(COMMAND_TIMEOUT));
        if settings.security != EmailSecurity::None {
            let mut tls = TlsParameters::builder(host.to_string());
            if let Some(ca_file) = &settings.ca_file {
                let pem = std::fs::read(ca_file).map_err(|err| {
                    MailerError(format!(
                        "cannot read email.ca_file {}: {err}",
                        ca_file.display()
                    ))
                })?;
                let ca = Certificate::from_pem(&pem).map_err(|err| {
                    MailerError(format!(
                        "email.ca_file {} holds no usable PEM certificate: {err}",
                        ca_file.display()
                    ))
                })?;
                tls = tls.add_root_certificate(ca);
            }
            let tls = tls
                .build_rustls()
                .map_err(|err| MailerError(format!("email TLS setup failed: {err}")))?;
            builder = builder.tls(match settings.security {
                EmailSecurity::Starttls => Tls::Required(tls),
                _ => Tls::Wrapper(tls),
            });
        }
        if let Some(username) = &settings.username {
            let password = password.ok_or_else(|| {
                MailerError(
                    "email.username is set but no password was read (email.password_file)".into(),
                )
            })?;
            builder = builder
                .credentials(Credentials::new(username.clone(), password))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }

        let id_domain = from
            .email
            .domain()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            .collect::<String>();
        Ok(Mailer {
            transport: builder.build(),
            from,
            to,
            id_domain: if id_domain.is_empty() {
                "socwatch.invalid".into()
            } else {
                id_domain
            },
            server,
        })
    }

    /// Sends one email with a fresh Message-ID.
    pub async fn send(&self, email: &RenderedEmail) -> Result<(), SendError> {
        let key = ulid::Ulid::generate().to_string();
        self.send_keyed(email, &key).await
    }

    /// Sends one email whose Message-ID is derived from `key` (e.g. the outbox entry), so that a
    /// retry after a lost answer is recognisably the same message to mail clients.
    pub async fn send_keyed(&self, email: &RenderedEmail, key: &str) -> Result<(), SendError> {
        let message = self.message(email, key)?;
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await {
            Err(_) => Err(SendError {
                retriable: true,
                message: format!(
                    "smtp {}: timed out after {} s",
                    self.server,
                    SEND_TIMEOUT.as_secs()
                ),
            }),
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(err)) => Err(classify(&self.server, &err)),
        }
    }

    /// The message as it goes on the wire: From, To, Subject (RFC 2047 when not ASCII), Date,
    /// Message-ID, Auto-Submitted, and a multipart/alternative body of text/plain and text/html,
    /// both UTF-8.
    pub fn message(&self, email: &RenderedEmail, key: &str) -> Result<Message, SendError> {
        let key: String = key
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .take(100)
            .collect();
        let mut builder = Message::builder()
            .from(self.from.clone())
            // The renderer already keeps subjects to one line; this is the transport's own guard.
            .subject(render::clean_subject(&email.subject))
            .date_now()
            .message_id(Some(format!("<socwatch.{key}@{}>", self.id_domain)))
            // RFC 3834: out-of-office robots must not answer an alert.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|err| SendError {
                retriable: false,
                message: format!("cannot build the email: {err}"),
            })
    }
}

/// 5xx answers and client-side refusals (e.g. no AUTH mechanism in common) do not get better by
/// waiting; everything else (4xx, connection refused, TLS, network, timeouts) may.
fn classify(server: &str, err: &lettre::transport::smtp::Error) -> SendError {
    let retriable = !(err.is_permanent() || err.is_client());
    let mut message = format!("smtp {server}: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    SendError { retriable, message }
}

/// Whether an incident is severe enough to be mailed (`email.min_severity`, default high).
pub fn wanted(settings: &config::Email, incident: &crate::model::Incident) -> bool {
    incident.severity >= settings.min_severity
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> config::Email {
        config::Config::parse("c.toml", text)
            .unwrap()
            .email
            .unwrap()
    }

    fn rendered() -> RenderedEmail {
        RenderedEmail {
            subject:
                "[socwatch][Nghiêm trọng] Dò mật khẩu SSH từ 203.0.113.7\r\nBcc: x@example.com"
                    .into(),
            text: "Đăng nhập thất bại\n".into(),
            html: "<p>Đăng nhập thất bại</p>\n".into(),
        }
    }

    #[test]
    fn the_message_has_the_headers_and_both_alternatives() {
        let mailer = Mailer::new(
            &settings(
                "[email]\nsmtp = \"127.0.0.1:2525\"\nsecurity = \"none\"\nfrom = \"Trung tâm giám sát <soc@example.gov.vn>\"\nto = [\"a@example.gov.vn\", \"Trực ban <b@example.gov.vn>\"]\n",
            ),
            None,
        )
        .unwrap();
        let message = mailer.message(&rendered(), "incident 01JD/r3").unwrap();
        let wire = String::from_utf8(message.formatted()).unwrap();
        let head = &wire[..wire.find("\r\n\r\n").unwrap()];
        assert!(
            head.contains("Message-ID: <socwatch.incident01JDr3@example.gov.vn>\r\n"),
            "{head}"
        );
        assert!(head.contains("Auto-Submitted: auto-generated\r\n"));
        assert!(head.contains("Date: "));
        assert!(head.contains("Subject: =?utf-8?"), "{head}");
        assert!(head.contains("Content-Type: multipart/alternative"));
        assert!(!head.contains("\r\nBcc:"), "{head}");
        assert!(head.contains("From: =?utf-8?"), "{head}");
        assert!(head.contains("a@example.gov.vn"));
        assert!(head.contains("<b@example.gov.vn>"));
        assert!(wire.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(wire.contains("Content-Type: text/html; charset=utf-8"));
        let envelope = message.envelope();
        assert_eq!(envelope.to().len(), 2);
        assert!(format!("{mailer:?}").contains("127.0.0.1:2525"));
    }

    #[test]
    fn only_incidents_at_or_above_min_severity_are_wanted() {
        let settings = settings(
            "[email]\nsmtp = \"127.0.0.1:25\"\nsecurity = \"none\"\nfrom = \"soc@example.gov.vn\"\nto = [\"a@example.gov.vn\"]\nmin_severity = \"medium\"\n",
        );
        let incident = |severity| {
            let mut incident: crate::model::Incident = serde_json::from_value(serde_json::json!({
                "id": "01JD3V6X8Q4W0Z5N2K7M9P1R3T", "rule_id": "r", "title": "t", "severity": "low",
                "status": "open", "first_seen": "2026-11-22T10:01:02+07:00",
                "last_seen": "2026-11-22T10:01:02+07:00", "count": 1, "group": {}, "host": "h",
                "system": "", "level": 0, "unit": "", "tags": [], "evidence": [],
                "evidence_omitted": 0, "history": [], "revision": 1
            }))
            .unwrap();
            incident.severity = severity;
            incident
        };
        assert!(!wanted(&settings, &incident(crate::model::Severity::Low)));
        assert!(wanted(&settings, &incident(crate::model::Severity::Medium)));
        assert!(wanted(
            &settings,
            &incident(crate::model::Severity::Critical)
        ));
    }

    #[test]
    fn a_username_needs_a_password_and_a_ca_file_must_exist() {
        let with_user = settings(
            "[email]\nsmtp = \"smtp.example.gov.vn:587\"\nusername = \"soc\"\npassword_file = \"/nonexistent\"\nfrom = \"soc@example.gov.vn\"\nto = [\"a@example.gov.vn\"]\n",
        );
        let err = Mailer::new(&with_user, None).unwrap_err();
        assert!(err.to_string().contains("no password"), "{err}");
        assert!(Mailer::new(&with_user, Some("pw".into())).is_ok());
        let with_ca = settings(
            "[email]\nsmtp = \"smtp.example.gov.vn:465\"\nsecurity = \"tls\"\nca_file = \"/nonexistent/ca.pem\"\nfrom = \"soc@example.gov.vn\"\nto = [\"a@example.gov.vn\"]\n",
        );
        let err = Mailer::new(&with_ca, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read email.ca_file /nonexistent/ca.pem"),
            "{err}"
        );
    }
}
