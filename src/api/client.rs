//! A small blocking HTTP/1.1 client for the daemon's local API, used by the `incidents` commands
//! while the daemon holds the store. Loopback only: the token is never sent off this machine.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::{Token, action_path};
use crate::model::Incident;
use crate::query::Filters;
use crate::store::Action;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longer than the server's own request timeout, so the server answers first.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// An answer larger than this is refused (a full export of 100,000 incidents stays well below).
const MAX_RESPONSE: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    NotLoopback(String),
    /// Nothing answered: connection refused, timed out, or cut before an answer.
    #[error("{0}")]
    Unreachable(std::io::Error),
    /// The API answered with an error status; `message` is its `error` text.
    #[error("{message}")]
    Status { status: u16, message: String },
    #[error("unexpected answer from the API: {0}")]
    BadResponse(String),
}

/// The daemon's API on this machine.
#[derive(Debug, Clone)]
pub struct Client {
    addr: SocketAddr,
    token: Option<Token>,
    /// Set when the listener serves TLS (`api.cert_file`): trusts exactly that certificate.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Client {
    /// A client for `listen` (the config's `api.listen`). An unspecified address (`0.0.0.0`, `::`) is
    /// reached on loopback; any other non-loopback address is refused.
    pub fn new(listen: &str, token: Option<Token>) -> Result<Client, ClientError> {
        let addr: SocketAddr = listen
            .parse()
            .map_err(|_| ClientError::NotLoopback(format!("bad API address '{listen}'")))?;
        let addr = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
            }
            ip if ip.is_loopback() => addr,
            _ => {
                return Err(ClientError::NotLoopback(format!(
                    "the API listens on {addr}, not on loopback; the incidents commands only talk to a local API"
                )));
            }
        };
        Ok(Client {
            addr,
            token,
            tls: None,
        })
    }

    /// A client for the config's listener: over TLS when `api.cert_file` is set, trusting exactly
    /// the certificate in that file (the daemon's own, on this machine), so a local CA or a name
    /// in the certificate is not needed.
    pub fn for_config(
        config: &crate::config::Config,
        token: Option<Token>,
    ) -> Result<Client, ClientError> {
        let mut client = Client::new(config.api.listen.get_ref(), token)?;
        if let Some(cert) = &config.api.cert_file {
            let pinned = super::tls::first_certificate(cert.get_ref())
                .map_err(|err| ClientError::BadResponse(err.to_string()))?;
            client.tls = Some(super::tls::pinned_client(pinned));
        }
        Ok(client)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn list(&self, filters: &Filters) -> Result<Vec<Incident>, ClientError> {
        let query = serde_urlencoded::to_string(filters.to_pairs())
            .map_err(|err| ClientError::BadResponse(err.to_string()))?;
        let path = if query.is_empty() {
            "/api/v1/incidents".to_string()
        } else {
            format!("/api/v1/incidents?{query}")
        };
        self.json("GET", &path, None)
    }

    pub fn get(&self, id: &str) -> Result<Incident, ClientError> {
        self.json("GET", &format!("/api/v1/incidents/{}", segment(id)), None)
    }

    /// The inclusion proof of an incident's last change (`GET /api/v1/incidents/{id}/proof`).
    pub fn proof(&self, id: &str) -> Result<crate::evidence::Proof, ClientError> {
        self.json(
            "GET",
            &format!("/api/v1/incidents/{}/proof", segment(id)),
            None,
        )
    }

    /// The facts of an incident's report (`GET /api/v1/reports/incident/{id}`).
    pub fn incident_report(&self, id: &str) -> Result<crate::reports::IncidentData, ClientError> {
        self.json(
            "GET",
            &format!("/api/v1/reports/incident/{}", segment(id)),
            None,
        )
    }

    /// The facts of a monitoring report (`GET /api/v1/reports/monitoring`).
    pub fn monitoring_report(
        &self,
        since: jiff::Timestamp,
        until: jiff::Timestamp,
    ) -> Result<crate::reports::MonitoringData, ClientError> {
        let query = serde_urlencoded::to_string([
            ("since", since.to_string()),
            ("until", until.to_string()),
        ])
        .expect("timestamps encode");
        self.json("GET", &format!("/api/v1/reports/monitoring?{query}"), None)
    }

    /// The consistency proof from the log's first `from` leaves (`GET /api/v1/evidence/consistency`).
    pub fn consistency(&self, from: u64) -> Result<crate::evidence::Consistency, ClientError> {
        self.json(
            "GET",
            &format!("/api/v1/evidence/consistency?from={from}"),
            None,
        )
    }

    /// The daemon's check of the evidence log (`GET /api/v1/evidence/verify`).
    pub fn verify(&self) -> Result<crate::evidence::Report, ClientError> {
        self.json("GET", "/api/v1/evidence/verify", None)
    }

    pub fn transition(
        &self,
        id: &str,
        action: Action,
        by: Option<&str>,
        note: &str,
    ) -> Result<Incident, ClientError> {
        // Without `by` the server records who the token belongs to.
        let mut body = serde_json::json!({"note": note});
        if let Some(by) = by {
            body["by"] = by.into();
        }
        let body = body.to_string();
        let path = format!("/api/v1/incidents/{}/{}", segment(id), action_path(action));
        self.json("POST", &path, Some(body.as_bytes()))
    }

    /// The running rules (`GET /api/v1/rules`).
    pub fn cases(&self, filters: &Filters) -> Result<Vec<crate::cases::Case>, ClientError> {
        let query = serde_urlencoded::to_string(filters.to_pairs())
            .map_err(|err| ClientError::BadResponse(err.to_string()))?;
        let path = if query.is_empty() {
            "/api/v1/cases".to_string()
        } else {
            format!("/api/v1/cases?{query}")
        };
        self.json("GET", &path, None)
    }

    pub fn case(&self, id: &str) -> Result<crate::cases::Case, ClientError> {
        self.json("GET", &format!("/api/v1/cases/{}", segment(id)), None)
    }

    /// A lifecycle action on a case (`to`: the assignee, for `assign` only).
    pub fn case_action(
        &self,
        id: &str,
        action: &str,
        by: Option<&str>,
        note: &str,
        to: Option<&str>,
    ) -> Result<crate::cases::Case, ClientError> {
        let mut body = serde_json::json!({"note": note});
        if let Some(by) = by {
            body["by"] = by.into();
        }
        if let Some(to) = to {
            body["to"] = to.into();
        }
        let body = body.to_string();
        let path = format!("/api/v1/cases/{}/{action}", segment(id));
        self.json("POST", &path, Some(body.as_bytes()))
    }

    pub fn rule_stats(&self) -> Result<Vec<crate::store::RuleStats>, ClientError> {
        self.json("GET", "/api/v1/rules/stats", None)
    }

    pub fn rules(&self) -> Result<Vec<super::RuleInfo>, ClientError> {
        self.json("GET", "/api/v1/rules", None)
    }

    pub fn status(&self) -> Result<super::DaemonStatus, ClientError> {
        self.json("GET", "/api/v1/status", None)
    }

    pub fn outbox(&self) -> Result<crate::store::OutboxReport, ClientError> {
        self.json("GET", "/api/v1/outbox", None)
    }

    /// Puts dead letters back and wakes the senders; returns how many were put back.
    pub fn outbox_retry(&self) -> Result<usize, ClientError> {
        let answer: super::RetryAnswer = self.json("POST", "/api/v1/outbox/retry", Some(b"{}"))?;
        Ok(answer.requeued)
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<T, ClientError> {
        let (status, body) = self.request(method, path, body)?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("the API answered {status}"));
            return Err(ClientError::Status { status, message });
        }
        serde_json::from_slice(&body).map_err(|err| ClientError::BadResponse(err.to_string()))
    }

    /// One request on a fresh connection (`Connection: close`): (status, body).
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let tcp = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT)
            .map_err(ClientError::Unreachable)?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| tcp.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(ClientError::Unreachable)?;
        let mut stream: Box<dyn ReadWrite> = match &self.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::IpAddress(self.addr.ip().into());
                let connection = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|err| ClientError::BadResponse(format!("tls: {err}")))?;
                Box::new(rustls::StreamOwned::new(connection, tcp))
            }
            None => Box::new(tcp),
        };
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
            self.addr
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {}\r\n", token.as_str()));
        }
        let body = body.unwrap_or_default();
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(body);
        stream
            .write_all(&message)
            .map_err(ClientError::Unreachable)?;
        let mut answer = Vec::new();
        match stream.take(MAX_RESPONSE).read_to_end(&mut answer) {
            Ok(_) => {}
            // A TLS peer that closes without close_notify after a whole answer: the answer stands
            // (its length is checked by the parser).
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
            Err(err) => return Err(ClientError::Unreachable(err)),
        }
        if answer.is_empty() {
            return Err(ClientError::Unreachable(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the connection closed without an answer",
            )));
        }
        parse_response(&answer).map_err(ClientError::BadResponse)
    }
}

fn segment(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// A plain or TLS connection.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Splits an HTTP/1.1 answer read to its end into status and body (Content-Length or chunked).
fn parse_response(answer: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&answer[..end]).map_err(|_| "headers are not UTF-8")?;
    let rest = &answer[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line '{status_line}'"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = length {
        rest.get(..length)
            .ok_or("body shorter than its Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        body.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_length_or_chunks_parse() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]";
        assert_eq!(parse_response(plain).unwrap(), (200, b"[]".to_vec()));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (404, b"abcde".to_vec()));
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn only_loopback_is_reached() {
        let any = Client::new("0.0.0.0:8610", None).unwrap();
        assert_eq!(any.addr(), "127.0.0.1:8610".parse().unwrap());
        let any6 = Client::new("[::]:8610", None).unwrap();
        assert_eq!(any6.addr(), "[::1]:8610".parse().unwrap());
        assert!(Client::new("10.0.0.5:8610", None).is_err());
        assert!(Client::new("[::1]:1", None).is_ok());
    }
}
