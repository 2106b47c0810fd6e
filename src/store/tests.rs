//! Unit tests of the store on a real sled database in a temporary folder.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::alerting::OutboxPolicy;
use crate::correlate::incident_id;
use crate::model::Evidence;

/// Opens the store at `dir` again after this process dropped it. sled lets go of its file lock
/// from a background thread some time after the drop, so a `Locked` answer is waited out (polled,
/// with a deadline) rather than taken for the result.
fn reopen(dir: &std::path::Path) -> Result<Store, StoreError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(dir, Default::default()) {
            Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A sample incident for the store's and the API's tests.
pub(crate) fn incident(
    rule: &str,
    ip: &str,
    first_seen: Timestamp,
    severity: Severity,
    level: u8,
) -> Incident {
    Incident {
        id: incident_id(rule, &[ip.to_string()], first_seen, 0),
        case_id: String::new(),
        rule_id: rule.into(),
        title: format!("{rule} title"),
        title_vi: None,
        severity,
        status: Status::Open,
        first_seen,
        last_seen: first_seen,
        count: 5,
        group: BTreeMap::from([("src_ip".to_string(), ip.to_string())]),
        host: "portal-01".into(),
        system: "dvc-portal".into(),
        level,
        unit: "So KH&CN".into(),
        tags: vec!["attack.t1110".into()],
        author: None,
        evidence: vec![evidence(
            first_seen,
            &format!("Failed password for root from {ip}"),
        )],
        evidence_omitted: 4,
        history: Vec::new(),
        revision: 1,
    }
}

fn evidence(at: Timestamp, line: &str) -> Evidence {
    Evidence {
        ts: at,
        source: "/var/log/auth.log".into(),
        line: line.into(),
    }
}

fn opened(incident: &Incident) -> Change {
    Change::Opened(Box::new(incident.clone()))
}

fn updated(incident: &Incident, count: u64, last_seen: Timestamp) -> Change {
    Change::Updated {
        id: incident.id.clone(),
        rule: 0,
        count,
        last_seen,
        evidence: Some(evidence(last_seen, &format!("line {count}"))),
    }
}

fn assert_consistent(store: &Store) {
    let problems = store.check_indexes().unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn apply_stores_opened_incidents_and_checkpoints_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let a = incident(
        "ssh-bruteforce",
        "203.0.113.7",
        ts("2026-11-22T03:00:00Z"),
        Severity::High,
        3,
    );
    {
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let stored = store
            .apply(
                &[opened(&a)],
                &[(
                    "/var/log/auth.log".into(),
                    Checkpoint {
                        fingerprint: 7,
                        offset: 1234,
                    },
                )],
            )
            .unwrap();
        assert_eq!(stored, vec![a.clone()]);
        store.flush().unwrap();
    }
    let store = reopen(dir.path()).unwrap();
    assert_eq!(store.get(&a.id).unwrap(), Some(a.clone()));
    assert_eq!(
        store.checkpoint("/var/log/auth.log").unwrap(),
        Some(Checkpoint {
            fingerprint: 7,
            offset: 1234
        })
    );
    assert_eq!(store.checkpoint("/nope").unwrap(), None);
    assert_consistent(&store);
}

#[test]
fn an_opened_id_already_stored_keeps_the_stored_incident_and_updates_fold_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let first = ts("2026-11-22T03:00:00Z");
    let a = incident("ssh-bruteforce", "203.0.113.7", first, Severity::High, 3);
    store.apply(&[opened(&a)], &[]).unwrap();
    let mut changes = vec![opened(&a)];
    let room = EVIDENCE_LINES - a.evidence.len();
    for n in 6..=20 {
        let mut change = updated(&a, n, first + SignedDuration::from_secs(n as i64));
        // The correlator decides which lines the evidence list keeps.
        if let Change::Updated { evidence, .. } = &mut change
            && n - 6 >= room as u64
        {
            *evidence = None;
        }
        changes.push(change);
    }
    let after = store.apply(&changes, &[]).unwrap();
    assert_eq!(after.len(), 1);
    let got = &after[0];
    assert_eq!(got.count, 20);
    assert_eq!(got.revision, 16);
    assert_eq!(got.evidence.len(), EVIDENCE_LINES);
    assert_eq!(got.evidence_omitted, 4 + 6);
    assert_eq!(got.last_seen, first + SignedDuration::from_secs(20));
    assert_eq!(store.get(&a.id).unwrap().as_ref(), Some(got));

    // The same Opened again (an id collision, which the engine's sequence rules out) changes nothing.
    let again = store.apply(&[opened(&a)], &[]).unwrap();
    assert_eq!(&again[0], got);
    // An update of an id never stored is ignored.
    let ghost = incident("ssh-bruteforce", "198.51.100.1", first, Severity::High, 3);
    assert!(
        store
            .apply(&[updated(&ghost, 9, first)], &[])
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.len(), 1);
    assert_consistent(&store);
}

#[test]
fn transitions_record_history_and_refuse_what_makes_no_sense() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let a = incident(
        "ssh-bruteforce",
        "203.0.113.7",
        ts("2026-11-22T03:00:00Z"),
        Severity::High,
        3,
    );
    store.apply(&[opened(&a)], &[]).unwrap();
    let now = ts("2026-11-22T04:00:00Z");

    let acked = store
        .transition(&a.id, Action::Ack, "operator1", "looking", now)
        .unwrap();
    assert_eq!(acked.status, Status::Acknowledged);
    assert_eq!(acked.revision, 2);
    assert_eq!(acked.history[0].action, "ack");
    assert_eq!(acked.history[0].by, "operator1");
    assert_eq!(acked.history[0].note, "looking");

    let resolved = store
        .transition(&a.id, Action::Resolve, "operator1", "", now)
        .unwrap();
    assert_eq!(resolved.status, Status::Resolved);
    let err = store
        .transition(&a.id, Action::Ack, "x", "", now)
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("cannot ack incident {}: it is resolved", a.id)
    );

    let fp = store
        .transition(&a.id, Action::FalsePositive, "lead", "scanner", now)
        .unwrap();
    assert_eq!(fp.status, Status::FalsePositive);
    let reopened = store
        .transition(&a.id, Action::Reopen, "lead", "", now)
        .unwrap();
    assert_eq!(reopened.status, Status::Open);
    assert_eq!(reopened.revision, 5);
    let actions: Vec<&str> = reopened.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(actions, ["ack", "resolve", "false_positive", "reopen"]);
    assert!(matches!(
        store.transition(&a.id, Action::Reopen, "x", "", now),
        Err(StoreError::InvalidTransition { .. })
    ));
    assert!(matches!(
        store.transition("01JD3V6X8Q4W0Z5N2K7M9P1R3T", Action::Ack, "x", "", now),
        Err(StoreError::NotFound(_))
    ));
    let only_open = Query {
        status: Some(Status::Open),
        ..Query::default()
    };
    assert_eq!(store.list(&only_open).unwrap().len(), 1);
    let only_acked = Query {
        status: Some(Status::Acknowledged),
        ..Query::default()
    };
    assert!(store.list(&only_acked).unwrap().is_empty());
    assert_consistent(&store);
}

fn fill(store: &Store) -> Vec<Incident> {
    let base = ts("2026-11-01T00:00:00Z");
    let mut all = Vec::new();
    for i in 0..60i64 {
        let severity = Severity::ALL[(i % 5) as usize];
        let mut inc = incident(
            if i % 2 == 0 {
                "ssh-bruteforce"
            } else {
                "web-scan"
            },
            &format!("203.0.113.{}", i % 7),
            base + SignedDuration::from_hours(i),
            severity,
            (i % 4) as u8,
        );
        inc.host = format!("host-{}", i % 3);
        all.push(inc);
    }
    let changes: Vec<Change> = all.iter().map(opened).collect();
    store.apply(&changes, &[]).unwrap();
    all
}

#[test]
fn list_filters_agree_with_a_full_scan_whichever_index_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let all = fill(&store);
    let queries = [
        Query::default(),
        Query {
            min_severity: Some(Severity::High),
            since: Some(ts("2026-11-02T00:00:00Z")),
            limit: Some(5),
            ..Query::default()
        },
        Query {
            fields: vec![("src_ip".into(), "203.0.113.3".into())],
            ..Query::default()
        },
        Query {
            host: Some("host-1".into()),
            rule: Some("web-scan".into()),
            until: Some(ts("2026-11-02T12:00:00Z")),
            ..Query::default()
        },
        Query {
            system: Some("dvc-portal".into()),
            min_severity: Some(Severity::Critical),
            limit: Some(3),
            ..Query::default()
        },
        Query {
            status: Some(Status::Open),
            host: Some("nope".into()),
            ..Query::default()
        },
    ];
    for query in queries {
        let mut want: Vec<Incident> = all.iter().filter(|i| query.matches(i)).cloned().collect();
        want.sort_by(|a, b| (b.last_seen, &b.id).cmp(&(a.last_seen, &a.id)));
        want.truncate(query.limit.unwrap_or(usize::MAX));
        let got = store.list(&query).unwrap();
        let ids = |v: &[Incident]| v.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&got), ids(&want), "{query:?}");
    }
}

#[test]
fn purge_respects_retention_and_level_floors_and_keeps_indexes_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let now = ts("2027-06-01T00:00:00Z");
    let days = |d: i64| now - SignedDuration::from_hours(24 * d);
    let old_l1 = incident("r", "1.1.1.1", days(60), Severity::Low, 1);
    let old_l3 = incident("r", "3.3.3.3", days(60), Severity::Low, 3);
    let older_l4 = incident("r", "4.4.4.4", days(100), Severity::Low, 4);
    let fresh = incident("r", "5.5.5.5", days(10), Severity::Low, 1);
    store
        .apply(
            &[
                opened(&old_l1),
                opened(&old_l3),
                opened(&older_l4),
                opened(&fresh),
            ],
            &[],
        )
        .unwrap();
    let retention = Duration::from_secs(30 * 86_400);
    let purged = store.purge(now, retention, &default_floors()).unwrap();
    assert_eq!(
        purged, 2,
        "the level 1 one past retention and the level 4 one past the floor"
    );
    assert!(store.get(&old_l1.id).unwrap().is_none());
    assert!(store.get(&older_l4.id).unwrap().is_none());
    assert!(
        store.get(&old_l3.id).unwrap().is_some(),
        "within the 90-day floor of level 3"
    );
    assert!(store.get(&fresh.id).unwrap().is_some());
    assert_consistent(&store);
    assert!(store.size_on_disk().unwrap() > 0);
}

#[test]
fn purge_works_in_chunks_over_many_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let base = ts("2026-01-01T00:00:00Z");
    let changes: Vec<Change> = (0..(PURGE_CHUNK as i64 * 2 + 10))
        .map(|i| {
            opened(&incident(
                "r",
                &format!("10.0.{}.{}", i / 256, i % 256),
                base + SignedDuration::from_secs(i),
                Severity::Low,
                0,
            ))
        })
        .collect();
    store.apply(&changes, &[]).unwrap();
    let purged = store
        .purge(
            ts("2027-01-01T00:00:00Z"),
            Duration::from_secs(86_400),
            &default_floors(),
        )
        .unwrap();
    assert_eq!(purged, changes.len());
    assert!(store.is_empty());
    assert_consistent(&store);
}

#[test]
fn floors_apply_to_their_level_and_above() {
    let floors = default_floors();
    assert_eq!(floor_for(&floors, 0), Duration::ZERO);
    assert_eq!(floor_for(&floors, 2), Duration::ZERO);
    assert_eq!(floor_for(&floors, 3), Duration::from_secs(90 * 86_400));
    assert_eq!(floor_for(&floors, 5), Duration::from_secs(90 * 86_400));
}

#[test]
fn open_incidents_since_returns_only_open_recent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let all = fill(&store);
    store
        .transition(
            &all[59].id,
            Action::Resolve,
            "x",
            "",
            ts("2026-12-01T00:00:00Z"),
        )
        .unwrap();
    let since = all[50].last_seen;
    let got: Vec<String> = store
        .open_incidents_since(since)
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    let want: Vec<String> = all[50..59].iter().map(|i| i.id.clone()).collect();
    assert_eq!(got, want);
}

#[test]
fn a_store_of_another_schema_is_refused_with_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(SCHEMA_KEY, &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let err = reopen(dir.path()).err().expect("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "store at {} has schema 99, this socwatch expects {SCHEMA_VERSION}",
            dir.path().display()
        )
    );
}

fn policy(cap: usize) -> OutboxPolicy {
    crate::alerting::test_policy(cap)
}

fn queued_revisions(store: &Store, destination: &str) -> Vec<(String, u64)> {
    store
        .outbox_peek(destination, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|q| (q.entry.incident.id, q.entry.incident.revision))
        .collect()
}

#[test]
fn incident_changes_queue_alerts_in_the_same_batch_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let first = ts("2026-11-22T03:00:00Z");
    let high = incident("ssh-bruteforce", "203.0.113.7", first, Severity::High, 3);
    let low = incident("web-scan", "203.0.113.8", first, Severity::Low, 3);
    {
        let store = Store::open(dir.path(), policy(100)).unwrap();
        store.apply(&[opened(&high), opened(&low)], &[]).unwrap();
        // 6..=9: no milestone; 10 is one. One batch folding 6..=12 gives one alert at its end.
        let mut changes = Vec::new();
        for n in 6..=9 {
            changes.push(updated(
                &high,
                n,
                first + SignedDuration::from_secs(n as i64),
            ));
        }
        store.apply(&changes, &[]).unwrap();
        let changes: Vec<Change> = (10..=12)
            .map(|n| updated(&high, n, first + SignedDuration::from_secs(n as i64)))
            .collect();
        store.apply(&changes, &[]).unwrap();
        store
            .transition(&high.id, Action::Ack, "operator1", "", first)
            .unwrap();
        // A replayed Opened changes nothing, so it queues nothing.
        store.apply(&[opened(&high)], &[]).unwrap();
        store.flush().unwrap();
    }
    let store = reopen(dir.path()).unwrap();
    let id = high.id.clone();
    assert_eq!(
        queued_revisions(&store, "national"),
        [(id.clone(), 1), (id.clone(), 8), (id.clone(), 9)],
        "opened, count 10 (revision 8 after 7 updates), acknowledged"
    );
    let national = store.outbox_peek("national", 10).unwrap();
    let reasons: Vec<_> = national.iter().map(|q| q.entry.reason).collect();
    use crate::alerting::AlertReason::*;
    assert_eq!(reasons, [Opened, CountMilestone, StatusChanged]);
    assert_eq!(national[1].entry.incident.count, 12);
    // Email hears of cases, not incidents: changes applied without a case queue nothing for it.
    assert!(queued_revisions(&store, "email").is_empty());
    assert_eq!(store.outbox_depth("national"), 3);
    assert_eq!(store.outbox_depth("email"), 0);

    store
        .outbox_delivered("national", &national[..2], first)
        .unwrap();
    assert_eq!(queued_revisions(&store, "national"), [(id.clone(), 9)]);
    assert_eq!(store.outbox_depth("national"), 1);
    let status = store.outbox_status(&["national", "email"], first).unwrap();
    assert_eq!(status[1].destination, "national");
    assert_eq!(status[1].pending, 1);
    assert_eq!(status[1].state.delivered, 2);
    assert_eq!(status[1].state.last_delivered_at, Some(first));
    // The reports' "who was notified": the two confirmed alerts, and the one still waiting.
    let delivered = store.deliveries(Some(&id)).unwrap();
    let revisions: Vec<(&str, u64, Timestamp)> = delivered
        .iter()
        .map(|d| (d.destination.as_str(), d.revision, d.delivered))
        .collect();
    assert_eq!(revisions, [("national", 1, first), ("national", 8, first)]);
    assert!(store.deliveries(Some(&low.id)).unwrap().is_empty());
    assert_eq!(store.deliveries(None).unwrap().len(), 2);
    let waiting = store.undelivered(Some(&id)).unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        (
            waiting[0].0.as_str(),
            waiting[0].1.incident.revision,
            waiting[0].2
        ),
        ("national", 9, false)
    );
}

#[test]
fn a_full_outbox_drops_the_oldest_lowest_severity_first_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), policy(3)).unwrap();
    let first = ts("2026-11-22T03:00:00Z");
    let made = |ip: &str, severity| incident("r", ip, first, severity, 3);
    let critical = made("203.0.113.1", Severity::Critical);
    let medium_old = made("203.0.113.2", Severity::Medium);
    let high = made("203.0.113.3", Severity::High);
    let medium_new = made("203.0.113.4", Severity::Medium);
    let critical_new = made("203.0.113.5", Severity::Critical);
    for one in [&critical, &medium_old, &high, &medium_new, &critical_new] {
        store.apply(&[opened(one)], &[]).unwrap();
    }
    let ids: Vec<String> = queued_revisions(&store, "national")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, [critical.id, high.id, critical_new.id]);
    assert_eq!(store.outbox_depth("national"), 3);
    assert_eq!(store.delivery_state("national").unwrap().evicted, 2);
}

#[test]
fn dead_letters_leave_the_queue_and_return_to_their_place_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), policy(100)).unwrap();
    let first = ts("2026-11-22T03:00:00Z");
    let a = incident("r", "203.0.113.1", first, Severity::Medium, 3);
    let b = incident("r", "203.0.113.2", first, Severity::Medium, 3);
    store.apply(&[opened(&a), opened(&b)], &[]).unwrap();
    let queued = store.outbox_peek("national", 10).unwrap();
    store
        .outbox_dead_letter("national", &queued[0], "422 unprocessable")
        .unwrap();
    assert_eq!(queued_revisions(&store, "national"), [(b.id.clone(), 1)]);
    let dead = store.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].incident_id, a.id);
    assert_eq!(dead[0].error, "422 unprocessable");
    assert_eq!(store.outbox_status(&[], first).unwrap()[0].dead_letters, 1);

    assert_eq!(store.outbox_requeue_dead().unwrap(), 1);
    assert!(store.dead_letters(10).unwrap().is_empty());
    assert_eq!(
        queued_revisions(&store, "national"),
        [(a.id.clone(), 1), (b.id.clone(), 1)]
    );
    assert_eq!(store.outbox_depth("national"), 2);
    assert!(
        store.outbox_peek("national", 10).unwrap()[0]
            .entry
            .error
            .is_none()
    );
}

#[test]
fn a_flush_after_queued_alerts_wakes_the_outputs_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), policy(100)).unwrap();
    let wakes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = wakes.clone();
    store.on_alerts(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let first = ts("2026-11-22T03:00:00Z");
    let a = incident("r", "203.0.113.1", first, Severity::Low, 3);
    store.apply(&[opened(&a)], &[]).unwrap();
    store.flush().unwrap();
    assert_eq!(
        wakes.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "low: no alert"
    );
    let b = incident("r", "203.0.113.2", first, Severity::High, 3);
    store.apply(&[opened(&b)], &[]).unwrap();
    assert_eq!(
        wakes.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "not durable yet"
    );
    store.flush().unwrap();
    store.flush().unwrap();
    assert_eq!(wakes.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Opens `incident` in `book` (setting its case id) and returns the change and the case.
fn opened_in_case(
    book: &mut crate::cases::CaseBook,
    incident: &mut Incident,
    follow_up: bool,
) -> (Change, crate::cases::Case) {
    let entity = crate::cases::Entity::of(incident, |_| None);
    let case = book.opened(incident, entity, follow_up, "auth.log").clone();
    (opened(incident), case)
}

#[test]
fn cases_are_stored_with_their_incidents_and_email_hears_once_per_case_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), policy(100)).unwrap();
    let first = ts("2026-11-22T03:00:00Z");
    let later = |s: i64| first + SignedDuration::from_secs(s);
    let mut book = crate::cases::CaseBook::new(crate::cases::DEFAULT_WINDOW);
    let mut root = incident(
        "ssh-root-login-attempt",
        "203.0.113.7",
        first,
        Severity::High,
        3,
    );
    let mut brute = incident("ssh-bruteforce", "203.0.113.7", later(5), Severity::High, 3);
    let mut login = incident(
        "ssh-login-after-bruteforce",
        "203.0.113.7",
        later(60),
        Severity::High,
        3,
    );

    // One batch opens two incidents of one attack: one case, one email.
    let (a, _) = opened_in_case(&mut book, &mut root, false);
    let (b, case) = opened_in_case(&mut book, &mut brute, false);
    store
        .apply_batch(&[a, b], std::slice::from_ref(&case), &[], &[])
        .unwrap();
    let stored = store.case(&case.id).unwrap().unwrap();
    assert_eq!(stored.incidents.len(), 2);
    assert_eq!(stored.revision, 1);
    assert_eq!(store.get(&root.id).unwrap().unwrap().case_id, case.id);
    let email = store.outbox_peek("email", 10).unwrap();
    assert_eq!(email.len(), 1);
    assert_eq!(email[0].entry.case.as_ref().unwrap().id, case.id);

    // An update that raises nothing tells email nothing; the follow-up raises the case: one more.
    let grown = book
        .updated(&root.id, 9, later(30), "auth.log")
        .unwrap()
        .clone();
    store
        .apply_batch(&[updated(&root, 9, later(30))], &[grown], &[], &[])
        .unwrap();
    assert_eq!(store.outbox_depth("email"), 1);
    let (c, raised) = opened_in_case(&mut book, &mut login, true);
    assert_eq!(raised.severity, Severity::Critical);
    store.apply_batch(&[c], &[raised], &[], &[]).unwrap();
    let email = store.outbox_peek("email", 10).unwrap();
    assert_eq!(email.len(), 2);
    assert_eq!(
        email[1].entry.reason,
        crate::alerting::AlertReason::SeverityRaised
    );
    assert_eq!(
        email[1].entry.incident.id, login.id,
        "the incident that raised it"
    );
    // The national center still hears of every incident, each naming its case.
    let national = store.outbox_peek("national", 10).unwrap();
    assert_eq!(national.len(), 3);
    assert!(national.iter().all(|q| q.entry.incident.case_id == case.id));

    // Resolving the case resolves its incidents, recorded in both histories, and tells the
    // pipeline to forget the case and the incidents.
    let resolved = store
        .case_transition(
            &case.id[..10],
            Action::Resolve,
            "lan",
            "blocked at the firewall",
            later(90),
        )
        .unwrap();
    assert_eq!(resolved.status, Status::Resolved);
    assert!(
        resolved
            .incidents
            .iter()
            .all(|i| i.status == Status::Resolved)
    );
    for id in [&root.id, &brute.id, &login.id] {
        let incident = store.get(id).unwrap().unwrap();
        assert_eq!(incident.status, Status::Resolved);
        let entry = incident.history.last().unwrap();
        assert_eq!(
            (entry.action.as_str(), entry.by.as_str()),
            ("resolve", "lan")
        );
        assert!(entry.note.contains(&case.id) && entry.note.contains("firewall"));
    }
    let closed = store.take_closed();
    assert!(
        closed.contains(&case.id) && closed.contains(&login.id),
        "{closed:?}"
    );
    assert!(matches!(
        store.case_transition(&case.id, Action::Resolve, "lan", "", later(91)),
        Err(StoreError::InvalidTransition { .. })
    ));

    // False positive on the case counts per rule.
    store
        .case_transition(&case.id, Action::FalsePositive, "lan", "", later(92))
        .unwrap();
    let stats = store.rule_stats().unwrap();
    let brute_stats = stats
        .iter()
        .find(|s| s.rule_id == "ssh-bruteforce")
        .unwrap();
    assert_eq!(
        (
            brute_stats.incidents,
            brute_stats.false_positives,
            brute_stats.open
        ),
        (1, 1, 0)
    );

    // Assign and listing.
    let assigned = store
        .case_assign(&case.id, Some("minh"), "lan", later(93))
        .unwrap();
    assert_eq!(assigned.assignee.as_deref(), Some("minh"));
    let query = CaseQuery {
        fields: vec![("src_ip".into(), "203.0.113.7".into())],
        ..CaseQuery::default()
    };
    assert_eq!(store.cases(&query).unwrap().len(), 1);
    let query = CaseQuery {
        status: Some(Status::Open),
        ..CaseQuery::default()
    };
    assert!(store.cases(&query).unwrap().is_empty());
    assert!(matches!(
        store.find_case("ZZZZZZZZZZ"),
        Err(StoreError::CaseNotFound(_))
    ));
}

#[test]
fn retention_keeps_a_case_while_any_of_its_incidents_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), policy(100)).unwrap();
    let old = ts("2026-01-01T00:00:00Z");
    let recent = ts("2026-11-20T00:00:00Z");
    let mut book = crate::cases::CaseBook::new(std::time::Duration::from_secs(400 * 86400));
    let mut a = incident("r1", "203.0.113.7", old, Severity::High, 0);
    let mut b = incident("r2", "203.0.113.7", recent, Severity::High, 0);
    let (ca, _) = opened_in_case(&mut book, &mut a, false);
    let (cb, case) = opened_in_case(&mut book, &mut b, false);
    store
        .apply_batch(&[ca, cb], std::slice::from_ref(&case), &[], &[])
        .unwrap();
    let now = ts("2026-11-22T00:00:00Z");
    let floors = BTreeMap::new();
    assert_eq!(
        store
            .purge(now, Duration::from_secs(30 * 86400), &floors)
            .unwrap(),
        1
    );
    assert!(
        store.case(&case.id).unwrap().is_some(),
        "one incident is still kept"
    );
    assert_eq!(
        store
            .purge(now, Duration::from_secs(86400), &floors)
            .unwrap(),
        1
    );
    assert!(
        store.case(&case.id).unwrap().is_none(),
        "its last incident went"
    );
    assert!(store.take_closed().contains(&case.id));
}

#[test]
fn a_merged_case_takes_the_others_incidents_and_history_and_the_other_goes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), policy(100)).unwrap();
    let first = ts("2026-11-22T03:00:00Z");
    let at = |minutes: i64| first + SignedDuration::from_mins(minutes);
    let mut book = crate::cases::CaseBook::new(std::time::Duration::from_secs(3600));
    let mut a = incident("a", "203.0.113.7", first, Severity::Low, 3);
    let mut c = incident("c", "203.0.113.7", at(150), Severity::Low, 3);
    let (ca, one) = opened_in_case(&mut book, &mut a, false);
    let (cc, two) = opened_in_case(&mut book, &mut c, false);
    store
        .apply_batch(&[ca, cc], &[one.clone(), two.clone()], &[], &[])
        .unwrap();
    store
        .case_transition(&two.id, Action::Ack, "lan", "xem", at(151))
        .unwrap();
    let merged = book
        .updated(&a.id, 40, at(100), "auth.log")
        .unwrap()
        .clone();
    store
        .apply_batch(&[updated(&a, 40, at(100))], &[merged], &[], &[])
        .unwrap();
    assert!(
        store.case(&two.id).unwrap().is_none(),
        "the absorbed case is gone"
    );
    let kept = store.case(&one.id).unwrap().unwrap();
    assert_eq!(kept.incidents.len(), 2);
    assert!(
        kept.history
            .iter()
            .any(|h| h.action == "ack" && h.by == "lan")
    );
    assert!(
        kept.history
            .iter()
            .any(|h| h.action == "merge" && h.note.contains(&two.id))
    );
    assert_eq!(store.get(&c.id).unwrap().unwrap().case_id, one.id);
    assert_eq!(store.case_incidents(&one.id).unwrap().len(), 2);
    assert!(store.check_indexes().unwrap().is_empty());
}
