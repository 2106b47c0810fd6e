//! When an incident change becomes an alert, and for which destinations. Pure: the store calls it
//! inside the transaction that writes the change, so the alert and the change are one fact.

use serde::{Deserialize, Serialize};

use crate::model::{Incident, Severity, Status};

/// Why an incident state is worth telling someone about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertReason {
    Opened,
    /// The incident's severity went up (a reloaded rule with a higher severity).
    SeverityRaised,
    /// The count reached 10, 100, 1,000, …: a long attack is reported as it grows, not per line.
    CountMilestone,
    /// An operator changed the status (ack, resolve, false positive, reopen).
    StatusChanged,
}

impl AlertReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertReason::Opened => "opened",
            AlertReason::SeverityRaised => "severity_raised",
            AlertReason::CountMilestone => "count_milestone",
            AlertReason::StatusChanged => "status_changed",
        }
    }
}

/// The largest power of ten (from 10) not above `count`; 0 below 10.
pub fn milestone(count: u64) -> u64 {
    let mut step = 10u64;
    let mut reached = 0;
    while step <= count {
        reached = step;
        match step.checked_mul(10) {
            Some(next) => step = next,
            None => break,
        }
    }
    reached
}

/// The reason `after` deserves an alert given the stored `before` (None: a new incident), if any.
/// One batch can fold several changes of one incident; the most important reason wins.
pub fn alert_reason(before: Option<&Incident>, after: &Incident) -> Option<AlertReason> {
    let Some(before) = before else {
        return Some(AlertReason::Opened);
    };
    if after.status != before.status {
        return Some(AlertReason::StatusChanged);
    }
    if after.severity > before.severity {
        return Some(AlertReason::SeverityRaised);
    }
    if milestone(after.count) > milestone(before.count) {
        return Some(AlertReason::CountMilestone);
    }
    None
}

/// One place alerts go: the national endpoint or the on-call mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `national` or `email`: the outbox key prefix and the metrics label.
    pub name: String,
    pub min_severity: Severity,
    /// Email wakes people up: it gets new incidents, raised severities and reopenings, not every
    /// milestone or acknowledgement. The national center gets every state change.
    pub every_change: bool,
}

impl Destination {
    pub fn wants(&self, reason: AlertReason, incident: &Incident) -> bool {
        if incident.severity < self.min_severity {
            return false;
        }
        self.every_change
            || match reason {
                AlertReason::Opened | AlertReason::SeverityRaised => true,
                AlertReason::CountMilestone => false,
                AlertReason::StatusChanged => incident.status == Status::Open,
            }
    }
}

pub const NATIONAL: &str = "national";
pub const EMAIL: &str = "email";

/// Where alerts go and how much may wait: set by the daemon (and the CLI) from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxPolicy {
    pub destinations: Vec<Destination>,
    /// Entries kept per destination; beyond it the oldest of the lowest severity are dropped,
    /// counted and logged.
    pub cap: usize,
}

pub use crate::config::DEFAULT_OUTBOX_CAP;

impl Default for OutboxPolicy {
    fn default() -> Self {
        OutboxPolicy {
            destinations: Vec::new(),
            cap: DEFAULT_OUTBOX_CAP,
        }
    }
}

impl OutboxPolicy {
    pub fn from_config(config: &crate::config::Config) -> OutboxPolicy {
        let mut destinations = Vec::new();
        if let Some(national) = &config.forward.national {
            destinations.push(Destination {
                name: NATIONAL.to_string(),
                min_severity: national.min_severity,
                every_change: true,
            });
        }
        if let Some(email) = &config.email {
            destinations.push(Destination {
                name: EMAIL.to_string(),
                min_severity: email.min_severity,
                every_change: false,
            });
        }
        OutboxPolicy {
            destinations,
            cap: config.daemon.outbox_cap,
        }
    }

    /// The destinations that get an alert for this change.
    pub fn targets<'a>(
        &'a self,
        before: Option<&Incident>,
        after: &'a Incident,
    ) -> impl Iterator<Item = (&'a Destination, AlertReason)> + 'a {
        let reason = alert_reason(before, after);
        self.destinations.iter().filter_map(move |destination| {
            let reason = reason?;
            destination
                .wants(reason, after)
                .then_some((destination, reason))
        })
    }
}

/// Exponential backoff with jitter: `base·2^attempt`, capped, then scaled by `jitter` in [0.5, 1]
/// so that many senders recovering together do not retry in lockstep.
pub fn backoff(
    attempt: u32,
    base: std::time::Duration,
    cap: std::time::Duration,
    jitter: f64,
) -> std::time::Duration {
    let doubled = base.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
    doubled.min(cap).mul_f64(jitter.clamp(0.5, 1.0))
}

/// National from medium, email from high: the policy the store's and the API's tests use.
#[cfg(test)]
pub(crate) fn test_policy(cap: usize) -> OutboxPolicy {
    OutboxPolicy {
        destinations: vec![
            Destination {
                name: NATIONAL.into(),
                min_severity: Severity::Medium,
                every_change: true,
            },
            Destination {
                name: EMAIL.into(),
                min_severity: Severity::High,
                every_change: false,
            },
        ],
        cap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn incident(ip: &str, rule: &str, severity: Severity, count: u64) -> Incident {
        let mut incident = crate::store::tests::incident(
            rule,
            ip,
            "2026-11-22T03:00:00Z".parse().unwrap(),
            severity,
            3,
        );
        incident.count = count;
        incident
    }

    #[test]
    fn milestones_are_powers_of_ten() {
        let table = [
            (0, 0),
            (9, 0),
            (10, 10),
            (99, 10),
            (100, 100),
            (12_345, 10_000),
            (u64::MAX, 10_000_000_000_000_000_000),
        ];
        for (count, expected) in table {
            assert_eq!(milestone(count), expected, "count {count}");
        }
    }

    #[test]
    fn reasons_for_each_kind_of_change() {
        let base = incident("203.0.113.7", "ssh-bruteforce", Severity::High, 5);
        let with = |f: &dyn Fn(&mut Incident)| {
            let mut changed = base.clone();
            f(&mut changed);
            changed
        };
        let cases: Vec<(Option<&Incident>, Incident, Option<AlertReason>)> = vec![
            (None, base.clone(), Some(AlertReason::Opened)),
            (Some(&base), with(&|i| i.count = 9), None),
            (
                Some(&base),
                with(&|i| i.count = 10),
                Some(AlertReason::CountMilestone),
            ),
            (
                Some(&base),
                with(&|i| i.status = Status::Acknowledged),
                Some(AlertReason::StatusChanged),
            ),
            (
                Some(&base),
                with(&|i| i.severity = Severity::Critical),
                Some(AlertReason::SeverityRaised),
            ),
            (Some(&base), with(&|i| i.severity = Severity::Low), None),
        ];
        for (before, after, expected) in cases {
            assert_eq!(alert_reason(before, &after), expected, "{after:?}");
        }
    }

    #[test]
    fn email_hears_of_new_and_reopened_incidents_national_of_everything() {
        let policy = test_policy(10);
        let names = |before: Option<&Incident>, after: &Incident| -> Vec<String> {
            policy
                .targets(before, after)
                .map(|(d, _)| d.name.clone())
                .collect()
        };
        let high = incident("203.0.113.7", "r", Severity::High, 5);
        assert_eq!(names(None, &high), ["national", "email"]);
        let medium = incident("203.0.113.8", "r", Severity::Medium, 5);
        assert_eq!(names(None, &medium), ["national"]);
        let low = incident("203.0.113.9", "r", Severity::Low, 5);
        assert!(names(None, &low).is_empty());

        let mut grown = high.clone();
        grown.count = 100;
        assert_eq!(names(Some(&high), &grown), ["national"]);
        let mut acked = high.clone();
        acked.status = Status::Acknowledged;
        assert_eq!(names(Some(&high), &acked), ["national"]);
        let mut reopened = high.clone();
        reopened.status = Status::Resolved;
        assert_eq!(names(Some(&reopened), &high), ["national", "email"]);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_only_shortens() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(300);
        assert_eq!(backoff(0, base, cap, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(3, base, cap, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(20, base, cap, 1.0), cap);
        assert_eq!(backoff(u32::MAX, base, cap, 1.0), cap);
        assert_eq!(backoff(3, base, cap, 0.5), Duration::from_secs(4));
        assert_eq!(backoff(3, base, cap, 0.0), Duration::from_secs(4));
    }
}
