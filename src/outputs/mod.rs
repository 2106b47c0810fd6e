//! The outputs: each destination drains its part of the outbox, oldest first, with retry and
//! backoff, and removes an entry only when the destination confirmed it.

pub mod email;
pub mod national;

use std::sync::Arc;

use tokio::sync::Notify;

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again later: after `after` when the destination said so (Retry-After), else backoff.
    Retry {
        error: String,
        after: Option<std::time::Duration>,
    },
    /// The destination refused the alerts for good (a 4xx other than 408/429).
    Refused {
        error: String,
    },
}

/// The two ways to wake a destination's sender: new alerts are durable in the outbox, or an
/// operator asked for a retry now (which also cuts a backoff wait short).
#[derive(Debug, Default)]
pub struct Wakers {
    pub alerts: Notify,
    pub retry_now: Notify,
}

/// One `Wakers` per destination, shared by the store's flush hook and the API.
#[derive(Debug, Default, Clone)]
pub struct Signals(Arc<std::sync::Mutex<Vec<Arc<Wakers>>>>);

impl Signals {
    pub fn add(&self) -> Arc<Wakers> {
        let wakers = Arc::new(Wakers::default());
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(wakers.clone());
        wakers
    }

    pub fn alerts_queued(&self) {
        for wakers in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            wakers.alerts.notify_one();
        }
    }

    pub fn retry_now(&self) {
        for wakers in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            wakers.retry_now.notify_one();
            wakers.alerts.notify_one();
        }
    }
}

/// A destination's consecutive failures and what follows from them: the wait before the next
/// attempt, the delivery state in the store, the metrics, the log line. Shared by every sender so
/// that they back off and report alike.
#[derive(Debug)]
pub(crate) struct Retries {
    destination: &'static str,
    retry_max: std::time::Duration,
    failures: u32,
}

impl Retries {
    pub(crate) fn new(destination: &'static str, retry_max: std::time::Duration) -> Retries {
        Retries {
            destination,
            retry_max,
            failures: 0,
        }
    }

    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Records an attempt of `alerts` alerts that failed for now and returns how long to wait:
    /// `after` when the destination said so (Retry-After), else the jittered backoff.
    pub(crate) async fn failed(
        &mut self,
        store: &std::sync::Arc<crate::store::Store>,
        metrics: &crate::metrics::Metrics,
        error: &str,
        alerts: usize,
        after: Option<std::time::Duration>,
    ) -> std::time::Duration {
        let delay = after.unwrap_or_else(|| {
            crate::alerting::backoff(
                self.failures,
                national::BACKOFF_BASE,
                self.retry_max,
                0.5 + fastrand::f64() / 2.0,
            )
        });
        self.failures = self.failures.saturating_add(1);
        metrics.alerts_retried.add(self.destination, alerts as u64);
        let now = jiff::Timestamp::now();
        let next = now
            .checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
            .unwrap_or(now);
        tracing::warn!(
            destination = self.destination,
            error = %error,
            alerts,
            retry_in_ms = delay.as_millis() as u64,
            "the destination did not take the alerts; will retry"
        );
        let (destination, error) = (self.destination, error.to_string());
        let recorded = off_thread(store, move |store| {
            store.outbox_failed(destination, &error, now, next)
        })
        .await;
        if let Err(err) = recorded {
            tracing::error!(error = %err, "cannot record the delivery failure");
        }
        delay
    }

    /// Records a refusal for good (the caller sets the alert aside).
    pub(crate) async fn refused(
        &self,
        store: &std::sync::Arc<crate::store::Store>,
        metrics: &crate::metrics::Metrics,
        error: &str,
    ) {
        metrics.alerts_failed.add(self.destination, 1);
        let now = jiff::Timestamp::now();
        let (destination, error) = (self.destination, error.to_string());
        let recorded = off_thread(store, move |store| {
            store.outbox_failed(destination, &error, now, now)
        })
        .await;
        if let Err(err) = recorded {
            tracing::error!(error = %err, "cannot record the delivery failure");
        }
    }
}

/// The latest signed checkpoint of the evidence log, signed now if the log grew since (so it
/// covers what is about to be sent); None without a notary or when signing fails (logged).
pub(crate) async fn current_checkpoint(
    store: &std::sync::Arc<crate::store::Store>,
    notary: Option<&std::sync::Arc<crate::evidence::notary::Notary>>,
) -> Option<String> {
    let notary = notary?.clone();
    off_thread(store, move |store| {
        match notary.checkpoint(store, jiff::Timestamp::now()) {
            Ok(latest) => latest.map(|(_, note)| note),
            Err(err) => {
                tracing::error!(error = %err, "cannot sign an evidence checkpoint");
                None
            }
        }
    })
    .await
}

/// Runs a store call off the async threads (sled blocks), as the API does. A panic in the call is
/// passed on to the caller.
pub(crate) async fn off_thread<T: Send + 'static>(
    store: &std::sync::Arc<crate::store::Store>,
    call: impl FnOnce(&crate::store::Store) -> T + Send + 'static,
) -> T {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || call(&store)).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// Waits for `delay`, an operator's retry, or (unless `backing_off`) new alerts. True when the
/// daemon is stopping.
pub(crate) async fn wait(
    stop: &mut tokio::sync::watch::Receiver<bool>,
    wakers: &Wakers,
    delay: std::time::Duration,
    backing_off: bool,
) -> bool {
    tokio::select! {
        _ = stop.wait_for(|s| *s) => true,
        _ = tokio::time::sleep(delay) => false,
        _ = wakers.retry_now.notified() => false,
        _ = wakers.alerts.notified(), if !backing_off => false,
    }
}

/// Text from a remote answer, made safe for a log line or a status table: control characters
/// escaped, length bounded (the same treatment as a table cell).
pub fn sanitize_remote_text(text: &str, max_chars: usize) -> String {
    crate::report::cell(text, max_chars)
}
