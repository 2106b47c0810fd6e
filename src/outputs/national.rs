//! The national endpoint: `socwatch.alert.v1` batches POSTed over HTTPS (private CA and mutual TLS
//! optional), retried with capped, jittered backoff, `Retry-After` honoured, refused alerts set
//! aside as dead letters.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::watch;

use super::{Outcome, Wakers, sanitize_remote_text, wait};
use crate::alerting::NATIONAL;
use crate::config;
use crate::metrics::Metrics;
use crate::model::Incident;
use crate::outputs::off_thread;
use crate::security::{self, Trust};
use crate::store::{Queued, Store};

/// The longest `Retry-After` obeyed: a receiver cannot park the sender for a day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The first retry waits about this long; each failure doubles it up to `retry_max`.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// Even with no wake-up, the sender looks at the outbox this often (a missed signal costs at most
/// this delay, never an alert).
pub(crate) const IDLE_POLL: Duration = Duration::from_secs(30);

/// Who sends: in every batch, so the national center knows which province and machine it is.
#[derive(Debug, Clone, Serialize)]
pub struct SenderInfo {
    pub unit: String,
    pub host: String,
    pub agent_version: String,
}

#[derive(Serialize)]
struct Alert<'a> {
    #[serde(flatten)]
    incident: &'a Incident,
    /// Why this state was sent (opened, count_milestone, …): an addition to the incident JSON.
    reason: &'static str,
}

#[derive(Serialize)]
struct Batch<'a> {
    schema: &'static str,
    sender: &'a SenderInfo,
    alerts: Vec<Alert<'a>>,
}

/// The JSON body of one POST.
pub fn batch_body(sender: &SenderInfo, batch: &[Queued]) -> Vec<u8> {
    let body = Batch {
        schema: "socwatch.alert.v1",
        sender,
        alerts: batch
            .iter()
            .map(|q| Alert {
                incident: &q.entry.incident,
                reason: q.entry.reason.as_str(),
            })
            .collect(),
    };
    serde_json::to_vec(&body).expect("alerts serialize")
}

/// Names the batch by its (incident id, revision) pairs, so resending the same batch after a
/// timeout or a restart carries the same key.
pub fn idempotency_key(batch: &[Queued]) -> String {
    let mut halves = [0u64; 2];
    for (salt, half) in halves.iter_mut().enumerate() {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut hasher);
        for queued in batch {
            queued.entry.incident.id.hash(&mut hasher);
            queued.entry.incident.revision.hash(&mut hasher);
        }
        *half = hasher.finish();
    }
    format!("socwatch-{:016x}{:016x}", halves[0], halves[1])
}

/// What an HTTP answer means for the batch. `retry_after` is the header's text, if any.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str, now: Timestamp) -> Outcome {
    let detail = sanitize_remote_text(body.trim(), 200);
    let error = if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    };
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry {
            error,
            after: retry_after.and_then(|value| parse_retry_after(value, now)),
        },
        400..=499 => Outcome::Refused { error },
        // Redirects are not followed (the token must not travel elsewhere) and 1xx/3xx answers
        // are a configuration matter that may be fixed: keep the alerts and retry.
        _ => Outcome::Retry { error, after: None },
    }
}

/// `Retry-After` as delay-seconds or an HTTP date, capped at `MAX_RETRY_AFTER`.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = jiff::fmt::rfc2822::DateTimeParser::new()
                .parse_timestamp(value)
                .ok()?;
            Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// The header carrying the evidence checkpoint: base64 of the signed note (a note has newlines).
pub const CHECKPOINT_HEADER: &str = "X-Socwatch-Checkpoint";

/// The HTTPS client for the national endpoint, built from `[forward.national]`.
pub struct NationalSender {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    sender: SenderInfo,
    pub batch_max: usize,
    pub retry_max: Duration,
    /// Signs the evidence checkpoint that goes with every POST (`X-Socwatch-Checkpoint`).
    pub notary: Option<Arc<crate::evidence::notary::Notary>>,
}

impl NationalSender {
    /// `trust` is the secret-file rule's (see [`crate::security`]) for the token and client key.
    pub fn from_config(
        settings: &config::National,
        sender: SenderInfo,
        trust: &Trust,
    ) -> anyhow::Result<Self> {
        let timeout = crate::duration::parse_duration(settings.timeout.get_ref())
            .map_err(|err| anyhow::anyhow!("forward.national.timeout: {err}"))?;
        let retry_max = crate::duration::parse_duration(settings.retry_max.get_ref())
            .map_err(|err| anyhow::anyhow!("forward.national.retry_max: {err}"))?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(!settings.url.get_ref().starts_with("http://"))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("socwatch/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = &settings.ca_file {
            let pem = std::fs::read(ca_file).with_context(|| {
                format!("cannot read forward.national.ca_file {}", ca_file.display())
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("no certificate in {}", ca_file.display()))?;
            anyhow::ensure!(
                !certificates.is_empty(),
                "no certificate in forward.national.ca_file {}",
                ca_file.display()
            );
            // A private CA replaces the public ones: only the national center's CA may vouch.
            builder = builder.tls_built_in_root_certs(false);
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let (Some(cert), Some(key)) = (&settings.client_cert, &settings.client_key) {
            let mut pem = std::fs::read(cert).with_context(|| {
                format!(
                    "cannot read forward.national.client_cert {}",
                    cert.display()
                )
            })?;
            pem.push(b'\n');
            pem.extend(security::read_bytes(
                key,
                "forward.national.client_key",
                trust,
            )?);
            let identity = reqwest::Identity::from_pem(&pem).context(
                "forward.national client_cert/client_key are not a PEM certificate and key",
            )?;
            builder = builder.identity(identity);
        }
        let token = settings
            .token_file
            .as_deref()
            .map(|path| security::read_text(path, "forward.national.token_file", trust))
            .transpose()?;
        Ok(NationalSender {
            client: builder.build().context("cannot build the HTTPS client")?,
            url: settings.url.get_ref().clone(),
            token,
            sender,
            batch_max: settings.batch_max.max(1),
            retry_max,
            notary: None,
        })
    }

    /// One POST of `batch`, with the evidence log's latest signed checkpoint (a C2SP signed note,
    /// base64 in the `X-Socwatch-Checkpoint` header) when there is one.
    pub async fn post(&self, batch: &[Queued], checkpoint: Option<&str>) -> Outcome {
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", idempotency_key(batch))
            .body(batch_body(&self.sender, batch));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(note) = checkpoint {
            use base64::Engine as _;
            request = request.header(
                CHECKPOINT_HEADER,
                base64::engine::general_purpose::STANDARD.encode(note),
            );
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                return Outcome::Retry {
                    error: describe(&err),
                    after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // The body only matters for the error text; a slow or huge one must not hold the batch.
        let body = if (200..300).contains(&status) {
            String::new()
        } else {
            match tokio::time::timeout(Duration::from_secs(5), response.text()).await {
                Ok(Ok(text)) => text.chars().take(1000).collect(),
                _ => String::new(),
            }
        };
        classify(status, retry_after.as_deref(), &body, Timestamp::now())
    }
}

/// The error chain of a failed request in one line (reqwest's top message alone says little).
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    sanitize_remote_text(&text, 300)
}

/// Drains the national outbox until `stop` turns true. Refused batches are resent one alert at a
/// time so that one bad alert does not take its batch-mates to the dead letters.
pub async fn run(
    sender: NationalSender,
    store: Arc<Store>,
    wakers: Arc<Wakers>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let delivered = metrics.alerts_delivered.get(NATIONAL);
    let mut retries = super::Retries::new(NATIONAL, sender.retry_max);
    // After a refused batch: send singly up to and including this sequence number.
    let mut singly_until: Option<u64> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let max = if singly_until.is_some() {
            1
        } else {
            sender.batch_max
        };
        let peeked = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.outbox_peek(NATIONAL, max)).await
        };
        let batch = match peeked {
            Ok(Ok(batch)) => batch,
            Ok(Err(err)) => {
                tracing::error!(error = %err, "cannot read the national outbox");
                if wait(&mut stop, &wakers, IDLE_POLL, true).await {
                    return;
                }
                continue;
            }
            Err(_) => return,
        };
        let Some(last) = batch.last() else {
            singly_until = None;
            if wait(&mut stop, &wakers, IDLE_POLL, false).await {
                return;
            }
            continue;
        };
        if singly_until.is_some_and(|until| last.seq > until) {
            singly_until = None;
        }
        let checkpoint = super::current_checkpoint(&store, sender.notary.as_ref()).await;
        let outcome = tokio::select! {
            outcome = sender.post(&batch, checkpoint.as_deref()) => outcome,
            _ = stop.wait_for(|s| *s) => return,
        };
        let now = Timestamp::now();
        match outcome {
            Outcome::Delivered => {
                retries.succeeded();
                let result = {
                    let store = store.clone();
                    let batch = batch.clone();
                    tokio::task::spawn_blocking(move || {
                        store.outbox_delivered(NATIONAL, &batch, now)
                    })
                    .await
                };
                match result {
                    Ok(Ok(())) => {
                        Metrics::inc(&delivered, batch.len() as u64);
                        tracing::debug!(alerts = batch.len(), "delivered to the national endpoint");
                    }
                    Ok(Err(err)) => {
                        // Delivered but not removed: it will be sent again, and the receiver drops
                        // it by (incident id, revision).
                        tracing::error!(error = %err, "cannot remove delivered alerts from the outbox");
                    }
                    Err(_) => return,
                }
            }
            Outcome::Retry { error, after } => {
                let delay = retries
                    .failed(&store, &metrics, &error, batch.len(), after)
                    .await;
                if wait(&mut stop, &wakers, delay, true).await {
                    return;
                }
            }
            Outcome::Refused { error } => {
                if batch.len() > 1 {
                    tracing::warn!(error = %error, alerts = batch.len(), "national endpoint refused a batch; resending its alerts one by one");
                    singly_until = Some(last.seq);
                    continue;
                }
                retries.refused(&store, &metrics, &error).await;
                tracing::error!(
                    error = %error,
                    incident = %last.entry.incident.id,
                    revision = last.entry.incident.revision,
                    "national endpoint refused an alert; kept as a dead letter (socwatch outbox retry sends it again)"
                );
                let (last, reason) = (last.clone(), error.clone());
                let moved = off_thread(&store, move |store| {
                    store.outbox_dead_letter(NATIONAL, &last, &reason)
                })
                .await;
                if let Err(err) = moved {
                    tracing::error!(error = %err, "cannot move the alert to the dead letters");
                    if wait(&mut stop, &wakers, IDLE_POLL, true).await {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_as_the_issue_says() {
        let now: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
        let retry = |after: Option<u64>| Outcome::Retry {
            error: String::new(),
            after: after.map(Duration::from_secs),
        };
        let table: [(u16, Option<&str>, Outcome); 10] = [
            (200, None, Outcome::Delivered),
            (202, None, Outcome::Delivered),
            (408, None, retry(None)),
            (429, Some("7"), retry(Some(7))),
            (429, Some("Sun, 22 Nov 2026 03:00:30 GMT"), retry(Some(30))),
            (503, Some("999999"), retry(Some(3600))),
            (500, Some("soon"), retry(None)),
            (
                401,
                None,
                Outcome::Refused {
                    error: String::new(),
                },
            ),
            (
                422,
                None,
                Outcome::Refused {
                    error: String::new(),
                },
            ),
            (302, None, retry(None)),
        ];
        for (status, header, expected) in table {
            let got = match classify(status, header, "", now) {
                Outcome::Retry { after, .. } => Outcome::Retry {
                    error: String::new(),
                    after,
                },
                Outcome::Refused { .. } => Outcome::Refused {
                    error: String::new(),
                },
                other => other,
            };
            assert_eq!(got, expected, "HTTP {status} {header:?}");
        }
    }

    #[test]
    fn error_text_from_the_receiver_is_made_inert() {
        let now: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
        let Outcome::Refused { error } = classify(400, None, "bad\r\nX-Injected: 1", now) else {
            panic!("400 is permanent");
        };
        assert_eq!(error, "HTTP 400: bad\\r\\nX-Injected: 1");
    }
}
