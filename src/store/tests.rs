//! Unit tests of the store on a real sled database in a temporary folder.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::correlate::incident_id;
use crate::model::Evidence;

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
        evidence: evidence(last_seen, &format!("line {count}")),
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
        let store = Store::open(dir.path()).unwrap();
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
    let store = Store::open(dir.path()).unwrap();
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
fn replayed_opened_is_idempotent_and_updates_fold_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let first = ts("2026-11-22T03:00:00Z");
    let a = incident("ssh-bruteforce", "203.0.113.7", first, Severity::High, 3);
    store.apply(&[opened(&a)], &[]).unwrap();
    let mut changes = vec![opened(&a)];
    for n in 6..=20 {
        changes.push(updated(&a, n, first + SignedDuration::from_secs(n as i64)));
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

    // The same Opened again (a replay after a crash) changes nothing.
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
    let store = Store::open(dir.path()).unwrap();
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
    let store = Store::open(dir.path()).unwrap();
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
    let store = Store::open(dir.path()).unwrap();
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
    let store = Store::open(dir.path()).unwrap();
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
    let store = Store::open(dir.path()).unwrap();
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
    let err = Store::open(dir.path()).err().expect("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "store at {} has schema 99, this socwatch expects {SCHEMA_VERSION}",
            dir.path().display()
        )
    );
}
