//! The case book's grouping, severity and saved state, on incidents built by hand.

use super::*;
use crate::store::tests::incident as stored_incident;

fn at(minute: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()
}

fn incident(rule: &str, ip: &str, minute: i64, severity: Severity, tags: &[&str]) -> Incident {
    let mut incident = stored_incident(rule, ip, at(minute), severity, 3);
    incident.tags = tags.iter().map(|t| t.to_string()).collect();
    incident.title = format!("{rule} title");
    incident
}

fn open(book: &mut CaseBook, incident: &mut Incident, follow_up: bool) -> Case {
    let entity = Entity::of(incident, |_| None);
    book.opened(incident, entity, follow_up, "auth.log").clone()
}

#[test]
fn one_address_is_one_case_with_the_highest_severity_and_tactics_in_order() {
    let mut book = CaseBook::new(DEFAULT_WINDOW);
    let mut root = incident(
        "ssh-root-login-attempt",
        "203.0.113.7",
        0,
        Severity::Medium,
        &["attack.credential_access", "attack.t1110.001"],
    );
    let mut brute = incident(
        "ssh-bruteforce",
        "203.0.113.7",
        1,
        Severity::High,
        &["attack.credential_access"],
    );
    let mut flood = incident(
        "ssh-preauth-flood",
        "203.0.113.7",
        2,
        Severity::Medium,
        &["attack.discovery", "attack.t1046", "attack.impact"],
    );
    let mut other = incident(
        "web-sql-injection",
        "198.51.100.9",
        2,
        Severity::High,
        &["attack.initial_access"],
    );
    let first = open(&mut book, &mut root, false);
    open(&mut book, &mut brute, false);
    let case = open(&mut book, &mut flood, false);
    let second = open(&mut book, &mut other, false);

    assert_eq!(case.id, first.id);
    assert_eq!(
        [&root.case_id, &brute.case_id, &flood.case_id],
        [&case.id; 3]
    );
    assert_ne!(second.id, case.id, "another address is another case");
    assert_eq!(other.case_id, second.id);
    assert_eq!(case.incidents.len(), 3);
    assert_eq!(
        case.severity,
        Severity::High,
        "the highest, not raised: {case:?}"
    );
    assert!(!case.progressed);
    assert_eq!(case.tactics, ["credential_access", "discovery", "impact"]);
    assert_eq!(case.entities["src_ip"], ["203.0.113.7"]);
    assert_eq!(case.entities["host"], ["portal-01"]);
    assert_eq!(case.title, "ssh-bruteforce title (203.0.113.7)");
    assert_eq!((case.first_seen, case.last_seen), (at(0), at(2)));
}

#[test]
fn a_follow_up_after_another_rule_raises_the_case_one_step() {
    let mut book = CaseBook::new(DEFAULT_WINDOW);
    let mut brute = incident("ssh-bruteforce", "203.0.113.7", 0, Severity::Medium, &[]);
    let mut login = incident(
        "ssh-login-after-bruteforce",
        "203.0.113.7",
        5,
        Severity::Medium,
        &["attack.initial_access"],
    );
    assert_eq!(
        open(&mut book, &mut brute, false).severity,
        Severity::Medium
    );
    let case = open(&mut book, &mut login, true);
    assert!(case.progressed);
    assert_eq!(case.severity, Severity::High, "medium raised one step");

    // A follow-up with nothing before it in the case shows no progress.
    let mut alone = incident(
        "ssh-login-after-bruteforce",
        "192.0.2.1",
        5,
        Severity::Medium,
        &[],
    );
    let case = open(&mut book, &mut alone, true);
    assert!(!case.progressed);
    assert_eq!(case.severity, Severity::Medium);

    // Critical stays critical.
    let mut brute = incident("ssh-bruteforce", "192.0.2.2", 0, Severity::High, &[]);
    let mut login = incident(
        "ssh-login-after-bruteforce",
        "192.0.2.2",
        1,
        Severity::Critical,
        &[],
    );
    open(&mut book, &mut brute, false);
    assert_eq!(
        open(&mut book, &mut login, true).severity,
        Severity::Critical
    );
}

#[test]
fn an_incident_after_the_window_starts_a_new_case() {
    let mut book = CaseBook::new(Duration::from_secs(3600));
    let mut a = incident("r1", "203.0.113.7", 0, Severity::Low, &[]);
    let mut b = incident("r2", "203.0.113.7", 60, Severity::Low, &[]);
    let mut c = incident("r3", "203.0.113.7", 121, Severity::Low, &[]);
    let first = open(&mut book, &mut a, false);
    assert_eq!(
        open(&mut book, &mut b, false).id,
        first.id,
        "exactly the window after: same case"
    );
    let third = open(&mut book, &mut c, false);
    assert_ne!(third.id, first.id);
    assert_eq!(third.incidents.len(), 1);
    // An update moves the case's last event, so a long attack keeps its case open.
    let mut d = incident("r4", "198.51.100.1", 0, Severity::Low, &[]);
    let case = open(&mut book, &mut d, false);
    let grown = book
        .updated(&d.id, 50, at(100), "auth.log")
        .unwrap()
        .clone();
    assert_eq!(grown.id, case.id);
    assert_eq!(grown.last_seen, at(100));
    assert_eq!(grown.incidents[0].count, 50);
    let mut e = incident("r5", "198.51.100.1", 150, Severity::Low, &[]);
    assert_eq!(open(&mut book, &mut e, false).id, case.id);
}

#[test]
fn the_entity_is_the_address_else_the_account_else_the_host() {
    let base = incident("r", "203.0.113.7", 0, Severity::Low, &[]);
    assert_eq!(
        Entity::of(&base, |_| None),
        Entity {
            kind: EntityKind::Address,
            value: "203.0.113.7".into()
        }
    );

    let mut web = base.clone();
    web.group = BTreeMap::from([("c-ip".to_string(), "203.0.113.7".to_string())]);
    assert_eq!(
        Entity::of(&web, |_| None),
        Entity::of(&base, |_| None),
        "c-ip is an address"
    );

    let mut by_user = base.clone();
    by_user.group = BTreeMap::from([("user".to_string(), "admin".to_string())]);
    assert_eq!(
        Entity::of(&by_user, |_| None),
        Entity {
            kind: EntityKind::Account,
            value: "admin".into()
        }
    );
    // The event's own address wins over the group's account.
    assert_eq!(
        Entity::of(&by_user, |f| (f == "src_ip").then_some("198.51.100.4")).kind,
        EntityKind::Address
    );

    let mut bare = base.clone();
    bare.group = BTreeMap::from([("src_ip".to_string(), String::new())]);
    assert_eq!(
        Entity::of(&bare, |_| None),
        Entity {
            kind: EntityKind::Host,
            value: "portal-01".into()
        }
    );
}

#[test]
fn a_forgotten_case_is_not_joined_again() {
    let mut book = CaseBook::new(DEFAULT_WINDOW);
    let mut a = incident("r1", "203.0.113.7", 0, Severity::Low, &[]);
    let first = open(&mut book, &mut a, false);
    assert!(book.forget(&first.id));
    assert!(book.updated(&a.id, 9, at(1), "auth.log").is_none());
    let mut b = incident("r2", "203.0.113.7", 1, Severity::Low, &[]);
    assert_ne!(open(&mut book, &mut b, false).id, first.id);
    assert!(!book.forget("no-such-case"));
}

#[test]
fn saved_state_continues_the_same_case() {
    let mut book = CaseBook::new(DEFAULT_WINDOW);
    let mut a = incident("ssh-bruteforce", "203.0.113.7", 0, Severity::High, &[]);
    let first = open(&mut book, &mut a, false);
    let delta = book.take_state_changes();
    assert_eq!(delta.len(), 1);
    assert!(delta.iter().all(|(key, _)| is_state_key(key)));
    assert!(
        book.take_state_changes().is_empty(),
        "nothing changed since"
    );

    let mut restored = CaseBook::new(DEFAULT_WINDOW);
    let saved = delta.into_iter().map(|(k, v)| (k, v.unwrap()));
    let garbage = std::iter::once((b"c{broken".to_vec(), b"{".to_vec()));
    assert_eq!(restored.restore_state(saved.chain(garbage)), (1, 1));
    assert!(
        restored.updated(&a.id, 7, at(3), "auth.log").is_some(),
        "updates reach the restored case"
    );
    let mut b = incident(
        "ssh-login-after-bruteforce",
        "203.0.113.7",
        4,
        Severity::Critical,
        &[],
    );
    let case = open(&mut restored, &mut b, true);
    assert_eq!(case.id, first.id);
    assert_eq!(case.incidents.len(), 2);
    let delta = restored.take_state_changes();
    assert!(
        delta.iter().any(|(k, v)| k == b"c{broken" && v.is_none()),
        "unreadable record deleted"
    );

    // A forgotten case is deleted from the saved state.
    restored.forget(&case.id);
    let delta = restored.take_state_changes();
    assert!(delta.iter().any(|(_, v)| v.is_none()));
}

#[test]
fn a_quiet_case_expires_on_its_own_sources_clock() {
    let mut book = CaseBook::new(Duration::from_secs(3600));
    let mut old = incident("r1", "203.0.113.7", 0, Severity::Low, &[]);
    let entity = Entity::of(&old, |_| None);
    let first = book.opened(&mut old, entity, false, "old.log").clone();
    // A newer source far ahead opens many cases: sweeps run, but judged on their own clock the old
    // source's case is still in its window.
    for n in 0..(SWEEP_EVERY + 1) {
        let mut live = incident(
            "r2",
            &format!("10.0.{}.{}", n / 250, n % 250),
            100_000,
            Severity::Low,
            &[],
        );
        let entity = Entity::of(&live, |_| None);
        book.opened(&mut live, entity, false, "live.log");
    }
    let mut later = incident("r3", "203.0.113.7", 30, Severity::Low, &[]);
    let entity = Entity::of(&later, |_| None);
    assert_eq!(
        book.opened(&mut later, entity, false, "old.log").id,
        first.id
    );
    assert_eq!(book.tracked(), SWEEP_EVERY + 2);
}

#[test]
fn absorbing_keeps_the_operators_decisions_and_a_closed_case_that_grows_reopens() {
    let mut book = CaseBook::new(DEFAULT_WINDOW);
    let mut a = incident("r1", "203.0.113.7", 0, Severity::Low, &[]);
    let core = open(&mut book, &mut a, false);
    let mut stored = core.clone();
    stored.status = Status::Acknowledged;
    stored.assignee = Some("lan".into());
    stored.revision = 4;
    stored.incidents[0].status = Status::Acknowledged;
    let grown = book.updated(&a.id, 30, at(2), "auth.log").unwrap().clone();
    assert!(!stored.absorb(&grown, at(3)));
    assert_eq!(stored.status, Status::Acknowledged);
    assert_eq!(stored.assignee.as_deref(), Some("lan"));
    assert_eq!(stored.incidents[0].status, Status::Acknowledged);
    assert_eq!(stored.incidents[0].count, 30);
    assert_eq!(stored.revision, 4, "the store counts revisions");

    stored.status = Status::Resolved;
    let mut b = incident("r2", "203.0.113.7", 3, Severity::High, &[]);
    let with_new = open(&mut book, &mut b, false);
    assert!(stored.absorb(&with_new, at(4)));
    assert_eq!(stored.status, Status::Open);
    assert_eq!(stored.severity, Severity::High);
    let entry = stored.history.last().unwrap();
    assert_eq!(
        (entry.action.as_str(), entry.by.as_str()),
        ("reopen", "socwatch")
    );
    assert!(entry.note.contains(&b.id));
}

#[test]
fn a_long_attack_lists_its_first_incidents_and_counts_the_rest() {
    let mut book = CaseBook::new(DEFAULT_WINDOW);
    let mut last = None;
    for n in 0..(MAX_CASE_INCIDENTS as i64 + 5) {
        let severity = if n == MAX_CASE_INCIDENTS as i64 + 2 {
            Severity::Critical
        } else {
            Severity::Low
        };
        let mut i = incident(&format!("r{n}"), "203.0.113.7", n, severity, &[]);
        last = Some(open(&mut book, &mut i, false));
    }
    let case = last.unwrap();
    assert_eq!(case.incidents.len(), MAX_CASE_INCIDENTS);
    assert_eq!(case.incidents_omitted, 5);
    assert_eq!(case.incident_count(), MAX_CASE_INCIDENTS as u64 + 5);
    assert_eq!(
        case.severity,
        Severity::Critical,
        "an omitted incident still counts"
    );
}

#[test]
fn tactics_are_the_tags_that_are_not_techniques() {
    let tags: Vec<String> = [
        "attack.credential_access",
        "attack.t1110.001",
        "attack.T1078",
        "cve.2021-44228",
        "attack.impact",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    assert_eq!(
        tactics_of(&tags).collect::<Vec<_>>(),
        ["credential_access", "impact"]
    );
}

/// The partition of `incidents` into cases after opening them in `order` (indexes).
fn partition(incidents: &[Incident], order: &[usize]) -> Vec<Vec<String>> {
    let mut book = CaseBook::new(DEFAULT_WINDOW);
    let mut states = crate::engine::CaseStates::default();
    for &at in order {
        let mut incident = incidents[at].clone();
        let entity = Entity::of(&incident, |_| None);
        states.record(book.opened(&mut incident, entity, false, "x"));
    }
    let mut groups: Vec<Vec<String>> = states
        .into_cases()
        .iter()
        .map(|c| {
            let mut rules: Vec<String> = c.incidents.iter().map(|i| i.rule_id.clone()).collect();
            rules.sort();
            rules
        })
        .collect();
    groups.sort();
    groups
}

#[test]
fn an_incident_that_bridges_two_cases_makes_them_one_in_any_order() {
    // a at 0, c a day and ten minutes later (outside a's window), b at 12 minutes: within both.
    let incidents = [
        incident("a", "203.0.113.7", 0, Severity::Low, &[]),
        incident("c", "203.0.113.7", 24 * 60 + 10, Severity::Low, &[]),
        incident("b", "203.0.113.7", 12, Severity::Low, &[]),
        incident("far", "203.0.113.7", 10 * 24 * 60, Severity::Low, &[]),
    ];
    let time_order = partition(&incidents, &[0, 2, 1, 3]);
    assert_eq!(time_order, [vec!["a", "b", "c"], vec!["far"]]);
    for order in [[0, 1, 2, 3], [1, 0, 2, 3], [3, 1, 2, 0], [2, 3, 1, 0]] {
        assert_eq!(partition(&incidents, &order), time_order, "order {order:?}");
    }
}

#[test]
fn a_case_that_grows_into_another_absorbs_it() {
    let mut book = CaseBook::new(Duration::from_secs(3600));
    let mut a = incident("a", "203.0.113.7", 0, Severity::Low, &[]);
    let mut c = incident("c", "203.0.113.7", 150, Severity::High, &[]);
    let first = open(&mut book, &mut a, false);
    let second = open(&mut book, &mut c, false);
    assert_ne!(first.id, second.id);
    // a's attack goes on until minute 100: within an hour of c's.
    let merged = book
        .updated(&a.id, 40, at(100), "auth.log")
        .unwrap()
        .clone();
    assert_eq!(merged.id, first.id, "the older case absorbs the newer");
    assert_eq!(merged.merged_from, std::slice::from_ref(&second.id));
    assert_eq!(merged.incidents.len(), 2);
    assert_eq!(merged.severity, Severity::High);
    assert_eq!(book.tracked(), 1);
    assert!(
        book.updated(&c.id, 2, at(151), "auth.log")
            .is_some_and(|case| case.id == first.id && case.merged_from.is_empty())
    );
    let delta = book.take_state_changes();
    assert!(
        delta
            .iter()
            .any(|(key, value)| key.ends_with(second.id.as_bytes()) && value.is_none())
    );
}
