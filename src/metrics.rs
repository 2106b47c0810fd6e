//! The daemon's counters: plain atomics that the pipeline, sources and outputs bump, and that the API
//! renders for `/metrics`. Knows nothing of the wire format.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Counters keyed by a label value (a source, a destination), created on first use.
#[derive(Debug, Default)]
pub struct Family(RwLock<BTreeMap<String, Arc<AtomicU64>>>);

impl Family {
    /// The counter for `label`; keep the handle to avoid the lookup on hot paths.
    pub fn get(&self, label: &str) -> Arc<AtomicU64> {
        if let Some(counter) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(label) {
            return counter.clone();
        }
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(label.to_string())
            .or_default()
            .clone()
    }

    pub fn add(&self, label: &str, n: u64) {
        self.get(label).fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(&self, label: &str, n: u64) {
        self.get(label).store(n, Ordering::Relaxed);
    }

    /// (label, value) in label order.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Everything `/metrics` reports except the store size, which is read at scrape time.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Lines read, per source (file path or syslog listener).
    pub lines_read: Family,
    /// Lines no decoder understood (read as plain events).
    pub parse_errors: AtomicU64,
    /// Rule matches.
    pub events_matched: AtomicU64,
    pub incidents_opened: AtomicU64,
    pub incidents_updated: AtomicU64,
    /// Syslog datagrams dropped because the pipeline was full.
    pub syslog_dropped: AtomicU64,
    /// Alerts delivered, per destination (`national`, `email`).
    pub alerts_delivered: Family,
    /// Alerts waiting in the outbox, per destination (a gauge).
    pub alerts_pending: Family,
    /// Alerts whose delivery attempt failed and will be retried, per destination.
    pub alerts_retried: Family,
    /// Alerts refused for good (moved to the dead letters), per destination.
    pub alerts_failed: Family,
    /// Alerts dropped because the outbox was full, per destination (read from the store at scrape
    /// time, so it counts since the store was created).
    pub alerts_dropped: Family,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
