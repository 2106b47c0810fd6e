//! The email sender: drains the `email` outbox in order through the flood gate. An alert the gate
//! admits is mailed on its own; one it folds leaves the outbox in the same transaction that saves
//! the gate holding it, and goes out in the next digest. The gate's state survives restarts.
//!
//! Alerts are per case: the oldest one waits `case_hold` after it was queued, then every alert
//! of that case queued by then goes out as one message showing the case as the store has it now.
//! So the incidents one attack opens within moments of each other make one email, and the flood
//! gate counts cases.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use super::{
    Admission, FloodGate, Mailer, RenderContext, render_alert, render_case, render_digest,
};
use crate::alerting::EMAIL;
use crate::metrics::Metrics;
use crate::outputs::national::IDLE_POLL;
use crate::outputs::{Retries, Wakers, off_thread, wait};
use crate::store::{Queued, Store};

/// The longest wait between retries of a failing SMTP server.
const RETRY_MAX: Duration = Duration::from_secs(300);

const GATE_KEY: &str = "email-flood-gate";

/// The saved gate with the configured limits, or a fresh one.
fn load_gate(store: &Store, limit: usize, window: Duration) -> FloodGate {
    let saved = store
        .output_state(GATE_KEY)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<FloodGate>(&bytes).ok());
    let mut gate = saved.unwrap_or_else(|| FloodGate::new(limit, window));
    gate.set_limits(limit, window);
    gate
}

async fn save_gate(store: &Arc<Store>, gate: &FloodGate) {
    let bytes = serde_json::to_vec(gate).expect("gate serializes");
    let saved = off_thread(store, move |store| {
        store
            .set_output_state(GATE_KEY, &bytes)
            .and_then(|()| store.flush())
    })
    .await;
    if let Err(err) = saved {
        tracing::error!(error = %err, "cannot save the email flood gate");
    }
}

/// Alerts of one case looked for behind the oldest: more than a burst of one attack ever queues.
const CASE_SCAN: usize = 1024;

/// The gate took `queued` (sent them, or folded them into the next digest): the entries leave the
/// outbox and the gate's new state is saved, both in one transaction, so a crash cannot keep one
/// without the other.
async fn take(store: &Arc<Store>, gate: &FloodGate, queued: &[Queued], now: Timestamp) {
    let bytes = serde_json::to_vec(gate).expect("gate serializes");
    let queued = queued.to_vec();
    let taken = off_thread(store, move |store| {
        store
            .outbox_delivered_with_state(EMAIL, &queued, now, Some((GATE_KEY, &bytes)))
            .and_then(|()| store.flush())
    })
    .await;
    if let Err(err) = taken {
        tracing::error!(error = %err, "cannot record the email alert as taken");
    }
}

pub struct EmailSender {
    pub mailer: Mailer,
    pub context: RenderContext,
    pub limit: usize,
    pub window: Duration,
    /// How long a case's alert waits for the rest of the attack (`email.case_hold`).
    pub case_hold: Duration,
    /// Signs the evidence checkpoint every email's footer carries.
    pub notary: Option<Arc<crate::evidence::notary::Notary>>,
}

impl EmailSender {
    /// The render context with the evidence checkpoint as of now.
    async fn context_now(&self, store: &Arc<Store>) -> RenderContext {
        let mut context = self.context.clone();
        context.checkpoint = crate::outputs::current_checkpoint(store, self.notary.as_ref()).await;
        context
    }
}

/// What one step of the loop did.
enum Step {
    Sent,
    Idle(Duration),
    Failed { error: String, retriable: bool },
}

/// Drains the email outbox until `stop` turns true.
pub async fn run(
    sender: EmailSender,
    store: Arc<Store>,
    wakers: Arc<Wakers>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let (limit, window) = (sender.limit, sender.window);
    let mut gate = off_thread(&store, move |store| load_gate(store, limit, window)).await;
    let delivered = metrics.alerts_delivered.get(EMAIL);
    let mut retries = Retries::new(EMAIL, RETRY_MAX);
    loop {
        if *stop.borrow() {
            return;
        }
        let step = tokio::select! {
            step = step(&sender, &store, &mut gate, &delivered) => step,
            _ = stop.wait_for(|s| *s) => return,
        };
        match step {
            Step::Sent => retries.succeeded(),
            Step::Idle(delay) => {
                if wait(&mut stop, &wakers, delay, false).await {
                    return;
                }
            }
            Step::Failed { error, retriable } => {
                if retriable {
                    let delay = retries.failed(&store, &metrics, &error, 1, None).await;
                    if wait(&mut stop, &wakers, delay, true).await {
                        return;
                    }
                } else {
                    retries.refused(&store, &metrics, &error).await;
                }
            }
        }
    }
}

/// One unit of work: a due digest, else the oldest queued alert.
async fn step(
    sender: &EmailSender,
    store: &Arc<Store>,
    gate: &mut FloodGate,
    delivered: &std::sync::atomic::AtomicU64,
) -> Step {
    let now = Timestamp::now();
    if gate.digest_due(now)
        && let Some(digest) = gate.pending_digest()
    {
        // The gate folds cases (and, from before cases, incidents): a case is listed by its most
        // severe incident.
        let ids = digest.incident_ids.clone();
        let incidents: Vec<_> = off_thread(store, move |store| {
            ids.iter()
                .filter_map(|id| match store.get(id).ok().flatten() {
                    Some(incident) => Some(incident),
                    None => {
                        let case = store.case(id).ok().flatten()?;
                        let top = case.incidents.iter().max_by_key(|i| i.severity)?;
                        store.get(&top.id).ok().flatten()
                    }
                })
                .collect()
        })
        .await;
        let email = render_digest(
            &incidents,
            digest.folded_total as usize,
            digest.first_folded,
            digest.last_folded,
            &sender.context_now(store).await,
        );
        let key = format!("digest.{}", digest.first_folded.as_millisecond());
        return match sender.mailer.send_keyed(&email, &key).await {
            Ok(()) => {
                gate.record_digest_sent(&digest, Timestamp::now());
                save_gate(store, gate).await;
                Metrics::inc(delivered, 1);
                tracing::info!(incidents = digest.folded_total, "email digest sent");
                Step::Sent
            }
            Err(err) if err.retriable => Step::Failed {
                error: err.message,
                retriable: true,
            },
            Err(err) => {
                // A digest refused for good cannot be kept as a dead letter (it is not an outbox
                // entry); its incidents stay in the store and in the national center's feed.
                tracing::error!(error = %err.message, incidents = digest.folded_total, "the SMTP server refused the digest; dropped");
                gate.record_digest_sent(&digest, Timestamp::now());
                save_gate(store, gate).await;
                Step::Failed {
                    error: err.message,
                    retriable: false,
                }
            }
        };
    }
    let queued: Vec<Queued> = match off_thread(store, |store| store.outbox_peek(EMAIL, 1)).await {
        Ok(queued) => queued,
        Err(err) => {
            tracing::error!(error = %err, "cannot read the email outbox");
            return Step::Idle(IDLE_POLL);
        }
    };
    let Some(queued) = queued.into_iter().next() else {
        let until_digest = gate
            .next_digest_at()
            .map(|at| Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO));
        return Step::Idle(until_digest.map_or(IDLE_POLL, |d| d.min(IDLE_POLL)));
    };
    if queued.entry.case.is_some() {
        return step_case(sender, store, gate, delivered, queued, now).await;
    }
    let incident = &queued.entry.incident;
    match gate.admit(&incident.id, now) {
        Admission::Fold => {
            take(store, gate, std::slice::from_ref(&queued), now).await;
            Step::Sent
        }
        Admission::Send => {
            let email = render_alert(incident, &sender.context_now(store).await);
            // The same alert resent after a crash keeps its Message-ID, so mail clients fold it.
            let key = format!("{}.{}", incident.id, incident.revision);
            let what = format!("incident {}", incident.id);
            send_and_take(
                sender,
                store,
                gate,
                delivered,
                &email,
                &key,
                vec![queued],
                &what,
            )
            .await
        }
    }
}

/// The oldest alert is a case's: after its hold, one message for every alert of that case queued
/// so far.
async fn step_case(
    sender: &EmailSender,
    store: &Arc<Store>,
    gate: &mut FloodGate,
    delivered: &std::sync::atomic::AtomicU64,
    oldest: Queued,
    now: Timestamp,
) -> Step {
    let Some(case) = oldest.entry.case.as_deref() else {
        return Step::Idle(IDLE_POLL);
    };
    let due = oldest.entry.enqueued
        + jiff::SignedDuration::try_from(sender.case_hold).unwrap_or(jiff::SignedDuration::ZERO);
    if now < due {
        let wait = Duration::try_from(due.duration_since(now)).unwrap_or(Duration::ZERO);
        return Step::Idle(wait.min(IDLE_POLL));
    }
    let case_id = case.id.clone();
    let id = case_id.clone();
    let found = off_thread(store, move |store| {
        let queued = store.outbox_peek(EMAIL, CASE_SCAN)?;
        let current = store.case(&id)?;
        Ok::<_, crate::store::StoreError>((queued, current))
    })
    .await;
    let (queued, current) = match found {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(error = %err, "cannot read the email outbox");
            return Step::Idle(IDLE_POLL);
        }
    };
    let same: Vec<Queued> = queued
        .into_iter()
        .filter(|q| q.entry.case.as_ref().is_some_and(|c| c.id == case_id))
        .collect();
    let newest = same
        .last()
        .and_then(|q| q.entry.case.as_deref())
        .unwrap_or(case);
    // The store's case (its incidents' current status); the newest alert's when it is gone.
    let case = current.unwrap_or_else(|| newest.clone());
    let trigger = same
        .iter()
        .map(|q| &q.entry.incident)
        .max_by_key(|i| i.severity)
        .unwrap_or(&oldest.entry.incident);
    match gate.admit(&case_id, now) {
        Admission::Fold => {
            take(store, gate, &same, now).await;
            Step::Sent
        }
        Admission::Send => {
            let email = render_case(&case, trigger, &sender.context_now(store).await);
            // Resent after a crash with the same Message-ID, so mail clients fold it.
            let key = format!("case.{}.{}", case.id, case.revision);
            let what = format!("case {}", case.id);
            send_and_take(sender, store, gate, delivered, &email, &key, same, &what).await
        }
    }
}

/// Sends one email for the alerts `queued` (one alert, or every alert of a case). Sent: they
/// leave the outbox with the gate's new state. Refused for good (5xx): they become dead letters
/// (`socwatch outbox retry` sends them again). Anything else: retried later, nothing taken.
#[allow(clippy::too_many_arguments)] // the loop's state, the message and what it covers
async fn send_and_take(
    sender: &EmailSender,
    store: &Arc<Store>,
    gate: &mut FloodGate,
    delivered: &std::sync::atomic::AtomicU64,
    email: &super::RenderedEmail,
    key: &str,
    queued: Vec<Queued>,
    what: &str,
) -> Step {
    match sender.mailer.send_keyed(email, key).await {
        Ok(()) => {
            let sent_at = Timestamp::now();
            gate.record_sent(sent_at);
            take(store, gate, &queued, sent_at).await;
            Metrics::inc(delivered, 1);
            tracing::info!(alerts = queued.len(), "email sent for {what}");
            Step::Sent
        }
        Err(err) if err.retriable => Step::Failed {
            error: err.message,
            retriable: true,
        },
        Err(err) => {
            tracing::error!(error = %err.message, "the SMTP server refused the email for {what}; kept as a dead letter (socwatch outbox retry sends it again)");
            let reason = err.message.clone();
            let moved = off_thread(store, move |store| {
                queued
                    .iter()
                    .try_for_each(|q| store.outbox_dead_letter(EMAIL, q, &reason))
            })
            .await;
            if let Err(err) = moved {
                tracing::error!(error = %err, "cannot move the alerts to the dead letters");
            }
            Step::Failed {
                error: err.message,
                retriable: false,
            }
        }
    }
}
