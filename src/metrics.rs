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
    /// When each source last delivered a line, and its rate.
    pub activity: Activity,
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
    /// This node's link to the cluster (`[cluster]`); untouched when it works alone.
    pub cluster: ClusterLink,
}

/// How a cluster node's link to the NATS server is doing, for `status` and `/metrics`.
#[derive(Debug, Default)]
pub struct ClusterLink {
    /// `edge`, `worker` or `console`; empty when the node works alone.
    pub role: RwLock<String>,
    /// 1 while the server answers, 0 while the node waits for it.
    pub connected: AtomicU64,
    /// Messages the server acknowledged (edge: matches; worker: incident changes; console: changes stored).
    pub published: AtomicU64,
    /// Attempts that failed and are retried (the data stays where it was: files, the stream).
    pub failures: AtomicU64,
    /// When the node started waiting for the server (milliseconds since the epoch; 0 = not waiting).
    pub waiting_since_ms: AtomicU64,
    /// The last error the server gave, for `status`.
    pub last_error: RwLock<String>,
    /// Partitions this node owns (workers).
    pub partitions: RwLock<Vec<u32>>,
    /// The fingerprint of the rule files it runs (as the console published them).
    pub rules: RwLock<String>,
}

impl ClusterLink {
    /// The server acknowledged: the link is up.
    pub fn up(&self) {
        self.connected.store(1, Ordering::Relaxed);
        self.waiting_since_ms.store(0, Ordering::Relaxed);
    }

    /// An attempt failed at `now_ms`: counted, remembered, and the wait starts if it had not.
    pub fn down(&self, error: &str, now_ms: u64) {
        self.connected.store(0, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        let _ = self.waiting_since_ms.compare_exchange(
            0,
            now_ms.max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        *self.last_error.write().unwrap_or_else(|e| e.into_inner()) = error.to_string();
    }

    pub fn role(&self) -> String {
        self.role.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// When each source last delivered a line and how many per minute, for `socwatch status`. Time is
/// passed in (milliseconds since the epoch), so the arithmetic is testable.
#[derive(Debug, Default)]
pub struct Activity(RwLock<BTreeMap<String, SourceActivity>>);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SourceActivity {
    /// Wall-clock time the source's latest line became durable.
    pub last_line_ms: i64,
    minute: i64,
    this_minute: u64,
    last_minute: u64,
}

impl Activity {
    pub fn record(&self, label: &str, lines: u64, now_ms: i64) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(label.to_string()).or_default();
        let minute = now_ms.div_euclid(60_000);
        if minute != entry.minute {
            entry.last_minute = if minute == entry.minute + 1 {
                entry.this_minute
            } else {
                0
            };
            entry.this_minute = 0;
            entry.minute = minute;
        }
        entry.this_minute += lines;
        entry.last_line_ms = now_ms;
    }

    /// (label, last line time, lines in the last full minute) in label order.
    pub fn snapshot(&self, now_ms: i64) -> Vec<(String, i64, u64)> {
        let minute = now_ms.div_euclid(60_000);
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(label, a)| {
                let per_minute = if a.minute == minute {
                    a.last_minute
                } else if a.minute + 1 == minute {
                    a.this_minute
                } else {
                    0
                };
                (label.clone(), a.last_line_ms, per_minute)
            })
            .collect()
    }
}

impl Metrics {
    pub fn inc(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_reports_the_last_full_minute_and_forgets_old_ones() {
        let activity = Activity::default();
        let minute = 60_000;
        activity.record("a", 10, 5 * minute + 1);
        activity.record("a", 5, 5 * minute + 2);
        assert_eq!(
            activity.snapshot(5 * minute + 3),
            vec![("a".into(), 5 * minute + 2, 0)]
        );
        assert_eq!(
            activity.snapshot(6 * minute),
            vec![("a".into(), 5 * minute + 2, 15)]
        );
        activity.record("a", 1, 6 * minute + 7);
        assert_eq!(activity.snapshot(6 * minute + 8)[0].2, 15);
        assert_eq!(activity.snapshot(9 * minute)[0].2, 0, "silent for minutes");
    }
}
