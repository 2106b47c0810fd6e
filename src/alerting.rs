//! When an incident change becomes an alert, and for which destinations. Pure: the store calls it
//! inside the transaction that writes the change, so the alert and the change are one fact.

use serde::{Deserialize, Serialize};

use crate::cases::Case;
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

/// The reason a case state deserves an alert to a destination that hears of cases (email), given
/// the stored `before` (None: a new case): it opened, its severity rose (a more severe incident
/// joined, or the attack progressed), or it reopened. Incidents that join without raising it tell
/// nobody new: the operator already has the case.
pub fn case_alert_reason(before: Option<&Case>, after: &Case) -> Option<AlertReason> {
    let Some(before) = before else {
        return Some(AlertReason::Opened);
    };
    if after.status == Status::Open && before.status != Status::Open {
        return Some(AlertReason::StatusChanged);
    }
    if after.severity > before.severity {
        return Some(AlertReason::SeverityRaised);
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
    /// It hears of cases (one message per attack: email), not of each incident (national).
    pub per_case: bool,
}

impl Destination {
    pub fn wants(&self, reason: AlertReason, incident: &Incident) -> bool {
        if self.per_case || incident.severity < self.min_severity {
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
                per_case: false,
            });
        }
        if let Some(email) = &config.email {
            destinations.push(Destination {
                name: EMAIL.to_string(),
                min_severity: email.min_severity,
                every_change: false,
                per_case: true,
            });
        }
        OutboxPolicy {
            destinations,
            cap: config.daemon.outbox_cap,
        }
    }

    /// The destinations that hear of cases and want this case alert.
    pub fn case_targets<'a>(
        &'a self,
        reason: AlertReason,
        case: &'a Case,
    ) -> impl Iterator<Item = &'a Destination> + 'a {
        self.destinations
            .iter()
            .filter(move |d| d.per_case && case.severity >= d.min_severity)
            .filter(move |_| reason != AlertReason::StatusChanged || case.status == Status::Open)
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
                per_case: false,
            },
            Destination {
                name: EMAIL.into(),
                min_severity: Severity::High,
                every_change: false,
                per_case: true,
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
        // Email hears of cases (`case_targets`), never of single incidents.
        let high = incident("203.0.113.7", "r", Severity::High, 5);
        assert_eq!(names(None, &high), ["national"]);
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
        assert_eq!(names(Some(&reopened), &high), ["national"]);
    }

    #[test]
    fn email_hears_of_a_case_when_it_opens_rises_or_reopens() {
        let policy = test_policy(10);
        let mut book = crate::cases::CaseBook::new(crate::cases::DEFAULT_WINDOW);
        let mut first = incident("203.0.113.7", "a", Severity::High, 5);
        let entity = crate::cases::Entity::of(&first, |_| None);
        let opened = book.opened(&mut first, entity.clone(), false, "c").clone();
        let names = |reason: Option<AlertReason>, case: &Case| -> Vec<String> {
            reason
                .map(|r| {
                    policy
                        .case_targets(r, case)
                        .map(|d| d.name.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(case_alert_reason(None, &opened), Some(AlertReason::Opened));
        assert_eq!(names(case_alert_reason(None, &opened), &opened), ["email"]);
        let mut second = incident("203.0.113.7", "b", Severity::High, 5);
        second.first_seen = first.first_seen + jiff::SignedDuration::from_secs(60);
        second.id = "other".into();
        let joined = book.opened(&mut second, entity, false, "c").clone();
        assert_eq!(
            case_alert_reason(Some(&opened), &joined),
            None,
            "same severity"
        );
        let mut raised = joined.clone();
        raised.severity = Severity::Critical;
        assert_eq!(
            case_alert_reason(Some(&joined), &raised),
            Some(AlertReason::SeverityRaised)
        );
        let mut closed = joined.clone();
        closed.status = Status::Resolved;
        assert_eq!(
            case_alert_reason(Some(&closed), &joined),
            Some(AlertReason::StatusChanged)
        );
        assert_eq!(
            case_alert_reason(Some(&joined), &closed),
            None,
            "closing tells email nothing"
        );
        let mut medium = opened.clone();
        medium.severity = Severity::Medium;
        assert!(
            names(Some(AlertReason::Opened), &medium).is_empty(),
            "below email's floor"
        );
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
