//! Flood control for one recipient list: at most `limit` emails in any sliding window, the rest
//! folded into digests. Pure: time is an argument, and the state is serde so a restart keeps it.
//!
//! The rule, for `limit` = N and `window` = W (default 10 per hour):
//!
//! 1. **Hard bound.** At most N emails, alerts and digests together, are sent in any interval of
//!    length W. The gate remembers the send times of the last N emails.
//! 2. **One slot is kept for the digest** (when N ≥ 2). An incident is sent on its own only while
//!    nothing is waiting to be folded and fewer than N − 1 emails went out in the last W; otherwise
//!    it is folded. Why: without the reserve, the (N+1)-th incident of a burst, critical or not,
//!    would wait until the burst's first email leaves the window (up to an hour); with it, the
//!    operator hears about the rest of the burst within W/N.
//! 3. **Digest timing.** A digest is due when something is folded, the window has room, and the
//!    oldest folded incident has waited at least W/N (6 minutes by default). Waiting W/N gathers a
//!    burst into one digest instead of one digest per freed slot, and during a long flood it spaces
//!    digests about W/N apart instead of sending them in clumps where the burst's slots free up.
//! 4. **Order.** While a digest is pending every new incident joins it, so an operator never sees
//!    a later incident alone before an earlier folded one.
//!
//! So 500 incidents in an hour give N − 1 alerts, then digests: at most N emails in any hour.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A digest keeps at most this many incident ids; beyond them it only counts.
pub const MAX_FOLDED_IDS: usize = 1000;

/// What to do with one incident's email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it on its own now, then call [`FloodGate::record_sent`].
    Send,
    /// It has been folded into the pending digest.
    Fold,
}

/// The incidents waiting for one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDigest {
    /// Ids of the folded incidents, in folding order, at most [`MAX_FOLDED_IDS`].
    pub incident_ids: Vec<String>,
    /// How many incidents were folded, counting those beyond the kept ids.
    pub folded_total: u64,
    /// When the first and the last of them were folded.
    pub first_folded: Timestamp,
    pub last_folded: Timestamp,
}

/// Flood control for one recipient list. Serialize it with the outbox so that a restart does not
/// hand out a fresh allowance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloodGate {
    limit: usize,
    window_ms: u64,
    /// Send times (Unix ms) of the emails still inside the window, oldest first; at most `limit`.
    sent: VecDeque<i64>,
    /// Folded incident ids waiting for a digest.
    folded: Vec<String>,
    /// Folded incidents not kept in `folded` (over [`MAX_FOLDED_IDS`]).
    folded_uncounted: u64,
    first_folded_ms: Option<i64>,
    last_folded_ms: Option<i64>,
}

impl FloodGate {
    /// `limit` is clamped to at least 1 (the config rejects 0).
    pub fn new(limit: usize, window: Duration) -> FloodGate {
        FloodGate {
            limit: limit.max(1),
            window_ms: window_ms(window),
            sent: VecDeque::new(),
            folded: Vec::new(),
            folded_uncounted: 0,
            first_folded_ms: None,
            last_folded_ms: None,
        }
    }

    /// Applies the current configuration to a gate restored from storage; what it remembers stays.
    pub fn set_limits(&mut self, limit: usize, window: Duration) {
        self.limit = limit.max(1);
        self.window_ms = window_ms(window);
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }

    /// Decides about one incident's email. `Fold` records the incident in the pending digest (a
    /// repeated id is folded once); `Send` records nothing until [`record_sent`](Self::record_sent),
    /// so a send that fails does not use up the allowance.
    pub fn admit(&mut self, incident_id: &str, now: Timestamp) -> Admission {
        let now = now.as_millisecond();
        if !self.has_pending() && self.in_window(now) < self.individual_cap() {
            return Admission::Send;
        }
        if !self.folded.iter().any(|id| id == incident_id) {
            if self.folded.len() < MAX_FOLDED_IDS {
                self.folded.push(incident_id.to_string());
            } else {
                self.folded_uncounted += 1;
            }
        }
        self.first_folded_ms.get_or_insert(now);
        self.last_folded_ms = Some(now);
        Admission::Fold
    }

    /// An email (alert or digest) went out at `now`.
    pub fn record_sent(&mut self, now: Timestamp) {
        let now = now.as_millisecond();
        self.sent.push_back(now);
        // Only the last `limit` times can decide anything.
        while self.sent.len() > self.limit {
            self.sent.pop_front();
        }
    }

    /// Whether the pending digest should be sent now (rule 3).
    pub fn digest_due(&self, now: Timestamp) -> bool {
        self.next_digest_at()
            .is_some_and(|at| at.as_millisecond() <= now.as_millisecond())
    }

    /// The earliest moment a pending digest becomes due, for the delivery loop's timer; None
    /// when nothing is folded.
    pub fn next_digest_at(&self) -> Option<Timestamp> {
        let first = self.first_folded_ms?;
        let gathered = first.saturating_add(self.spacing_ms());
        // The window has room once the oldest of the last `limit` sends leaves it.
        let room = if self.sent.len() < self.limit {
            i64::MIN
        } else {
            self.sent[self.sent.len() - self.limit].saturating_add(self.window_ms as i64)
        };
        Timestamp::from_millisecond(gathered.max(room)).ok()
    }

    /// What the pending digest holds; None when nothing is folded. Send it, then call
    /// [`record_digest_sent`](Self::record_digest_sent) with it.
    pub fn pending_digest(&self) -> Option<PendingDigest> {
        let first = self.first_folded_ms?;
        let last = self.last_folded_ms.unwrap_or(first);
        Some(PendingDigest {
            incident_ids: self.folded.clone(),
            folded_total: self.folded.len() as u64 + self.folded_uncounted,
            first_folded: Timestamp::from_millisecond(first).unwrap_or(Timestamp::UNIX_EPOCH),
            last_folded: Timestamp::from_millisecond(last).unwrap_or(Timestamp::UNIX_EPOCH),
        })
    }

    /// The digest was sent at `now`: its incidents leave the pending list (anything folded since
    /// [`pending_digest`](Self::pending_digest) stays for the next one) and it counts as one email.
    pub fn record_digest_sent(&mut self, digest: &PendingDigest, now: Timestamp) {
        self.folded.retain(|id| !digest.incident_ids.contains(id));
        let uncounted_sent = digest
            .folded_total
            .saturating_sub(digest.incident_ids.len() as u64);
        self.folded_uncounted = self.folded_uncounted.saturating_sub(uncounted_sent);
        if self.folded.is_empty() && self.folded_uncounted == 0 {
            self.first_folded_ms = None;
            self.last_folded_ms = None;
        } else if self.last_folded_ms > Some(digest.last_folded.as_millisecond()) {
            // What was folded after the snapshot waits its own W/N from the snapshot's end.
            self.first_folded_ms = Some(digest.last_folded.as_millisecond());
        }
        self.record_sent(now);
    }

    fn has_pending(&self) -> bool {
        self.first_folded_ms.is_some()
    }

    /// Emails sent in the window ending at `now`.
    fn in_window(&self, now: i64) -> usize {
        let since = now.saturating_sub(self.window_ms as i64);
        self.sent.iter().filter(|&&at| at > since).count()
    }

    /// How many of the window's emails may be individual alerts: all but the digest's slot.
    fn individual_cap(&self) -> usize {
        if self.limit >= 2 { self.limit - 1 } else { 1 }
    }

    /// How long a folded incident waits for company before its digest may go: W/N.
    fn spacing_ms(&self) -> i64 {
        (self.window_ms / self.limit as u64) as i64
    }
}

fn window_ms(window: Duration) -> u64 {
    u64::try_from(window.as_millis())
        .unwrap_or(u64::MAX / 4)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_795_000_000 + secs).unwrap()
    }

    /// Drives a gate the way the delivery loop will: before each incident, send a due digest;
    /// returns the times of individual alerts and of digests (with their sizes).
    fn simulate(gate: &mut FloodGate, arrivals: &[i64], until: i64) -> (Vec<i64>, Vec<(i64, u64)>) {
        let mut alerts = Vec::new();
        let mut digests = Vec::new();
        let flush = |gate: &mut FloodGate, now: i64, digests: &mut Vec<(i64, u64)>| {
            if gate.digest_due(at(now)) {
                let digest = gate.pending_digest().unwrap();
                gate.record_digest_sent(&digest, at(now));
                digests.push((now, digest.folded_total));
            }
        };
        for (n, &t) in arrivals.iter().enumerate() {
            flush(gate, t, &mut digests);
            if gate.admit(&format!("inc-{n}"), at(t)) == Admission::Send {
                gate.record_sent(at(t));
                alerts.push(t);
            }
        }
        // Then the loop's timer: wake at each next_digest_at.
        while let Some(next) = gate.next_digest_at() {
            let now = next.as_second() - 1_795_000_000;
            if now > until {
                break;
            }
            flush(gate, now, &mut digests);
        }
        (alerts, digests)
    }

    fn max_in_any_window(times: &[i64], window: i64) -> usize {
        times
            .iter()
            .map(|&start| {
                times
                    .iter()
                    .filter(|&&t| t >= start && t < start + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn five_hundred_incidents_in_an_hour_give_at_most_the_limit() {
        let mut gate = FloodGate::new(10, HOUR);
        // One incident every 7 seconds: 500 in 58 minutes.
        let arrivals: Vec<i64> = (0..500).map(|i| i * 7).collect();
        let (alerts, digests) = simulate(&mut gate, &arrivals, 4 * 3600);
        assert_eq!(alerts, (0..9).map(|i| i * 7).collect::<Vec<_>>());
        let mut all: Vec<i64> = alerts.clone();
        all.extend(digests.iter().map(|(t, _)| *t));
        all.sort();
        assert!(max_in_any_window(&all, 3600) <= 10, "{all:?}");
        // Every incident reached the operator, alone or in a digest.
        let folded: u64 = digests.iter().map(|(_, n)| n).sum();
        assert_eq!(alerts.len() as u64 + folded, 500);
        // The first digest comes W/N after the first fold (at 63 s), not an hour later; 427 is the
        // first arrival after 63 + 360, when this simulation looks.
        assert_eq!(digests[0].0, 427, "{digests:?}");
        assert!(gate.pending_digest().is_none());
    }

    #[test]
    fn a_burst_is_bounded_whatever_its_size() {
        for limit in [1, 2, 3, 10] {
            let mut gate = FloodGate::new(limit, HOUR);
            let arrivals: Vec<i64> = (0..5000).map(|i| i / 3).collect();
            let (alerts, digests) = simulate(&mut gate, &arrivals, 10 * 3600);
            let mut all: Vec<i64> = alerts.clone();
            all.extend(digests.iter().map(|(t, _)| *t));
            all.sort();
            assert!(
                max_in_any_window(&all, 3600) <= limit,
                "limit {limit}: {all:?}"
            );
            let folded: u64 = digests.iter().map(|(_, n)| n).sum();
            assert_eq!(alerts.len() as u64 + folded, 5000, "limit {limit}");
        }
    }

    #[test]
    fn quiet_traffic_is_never_folded() {
        let mut gate = FloodGate::new(10, HOUR);
        // Nine an hour, for a day.
        let arrivals: Vec<i64> = (0..9 * 24).map(|i| i * 400).collect();
        let (alerts, digests) = simulate(&mut gate, &arrivals, 30 * 3600);
        assert_eq!(alerts.len(), 9 * 24);
        assert!(digests.is_empty());
    }

    #[test]
    fn the_window_slides() {
        let mut gate = FloodGate::new(3, Duration::from_secs(60));
        assert_eq!(gate.admit("a", at(0)), Admission::Send);
        gate.record_sent(at(0));
        assert_eq!(gate.admit("b", at(10)), Admission::Send);
        gate.record_sent(at(10));
        // Two sent, the third slot is the digest's.
        assert_eq!(gate.admit("c", at(20)), Admission::Fold);
        assert!(!gate.digest_due(at(39)));
        // W/N = 20 s after the fold, and the window has room.
        assert_eq!(gate.next_digest_at(), Some(at(40)));
        assert!(gate.digest_due(at(40)));
        let digest = gate.pending_digest().unwrap();
        assert_eq!(digest.incident_ids, vec!["c".to_string()]);
        gate.record_digest_sent(&digest, at(40));
        // Three in [0, 60): full until the first leaves at 60.
        assert_eq!(gate.admit("d", at(45)), Admission::Fold);
        assert_eq!(gate.next_digest_at(), Some(at(65)));
        gate.record_digest_sent(&gate.pending_digest().unwrap(), at(65));
        // 10 and 40 left the window by 101: individual alerts again.
        assert_eq!(gate.admit("e", at(101)), Admission::Send);
    }

    #[test]
    fn a_failed_send_uses_no_allowance_and_a_repeat_is_folded_once() {
        let mut gate = FloodGate::new(2, HOUR);
        assert_eq!(gate.admit("a", at(0)), Admission::Send);
        // Not recorded (the send failed): the retry is admitted again.
        assert_eq!(gate.admit("a", at(5)), Admission::Send);
        gate.record_sent(at(5));
        assert_eq!(gate.admit("b", at(6)), Admission::Fold);
        assert_eq!(gate.admit("b", at(7)), Admission::Fold);
        assert_eq!(gate.pending_digest().unwrap().folded_total, 1);
    }

    #[test]
    fn what_is_folded_while_a_digest_is_sent_waits_for_the_next() {
        let mut gate = FloodGate::new(10, HOUR);
        for i in 0..9 {
            gate.admit(&i.to_string(), at(i));
            gate.record_sent(at(i));
        }
        gate.admit("x", at(100));
        let digest = gate.pending_digest().unwrap();
        gate.admit("y", at(200));
        gate.record_digest_sent(&digest, at(460));
        let next = gate.pending_digest().unwrap();
        assert_eq!(next.incident_ids, vec!["y".to_string()]);
        assert_eq!(next.folded_total, 1);
    }

    #[test]
    fn ids_beyond_the_cap_are_counted() {
        let mut gate = FloodGate::new(1, HOUR);
        gate.admit("first", at(0));
        gate.record_sent(at(0));
        for i in 0..MAX_FOLDED_IDS + 5 {
            assert_eq!(gate.admit(&format!("i{i}"), at(1)), Admission::Fold);
        }
        let digest = gate.pending_digest().unwrap();
        assert_eq!(digest.incident_ids.len(), MAX_FOLDED_IDS);
        assert_eq!(digest.folded_total, MAX_FOLDED_IDS as u64 + 5);
        gate.record_digest_sent(&digest, at(3600));
        assert!(gate.pending_digest().is_none());
    }

    #[test]
    fn the_state_survives_a_restart() {
        let mut gate = FloodGate::new(2, HOUR);
        gate.admit("a", at(0));
        gate.record_sent(at(0));
        gate.admit("b", at(1));
        let saved = serde_json::to_string(&gate).unwrap();
        let mut restored: FloodGate = serde_json::from_str(&saved).unwrap();
        restored.set_limits(2, HOUR);
        assert_eq!(restored, gate);
        // The restart did not reset the allowance.
        assert_eq!(restored.admit("c", at(2)), Admission::Fold);
        assert_eq!(restored.pending_digest().unwrap().folded_total, 2);
    }
}
