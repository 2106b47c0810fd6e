//! Query speed of the incident store with 1,000,000 incidents (issue 4): `list --severity high
//! --since 24h --limit 50` and a `--field src_ip=…` lookup; prints bytes per incident on disk.
//! `SOCWATCH_BENCH_INCIDENTS` changes the fill size.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use socwatch::correlate::{Change, incident_id};
use socwatch::model::{Evidence, Incident, Severity, Status};
use socwatch::store::{Query, Store};

const RULES: [(&str, Severity); 8] = [
    ("ssh-bruteforce", Severity::High),
    ("ssh-root-login-attempt", Severity::Medium),
    ("web-sqli", Severity::High),
    ("web-scan", Severity::Low),
    ("web-path-traversal", Severity::Medium),
    ("postfix-auth-bruteforce", Severity::Medium),
    ("sudo-auth-failure", Severity::Info),
    ("webshell-access", Severity::Critical),
];

/// A cheap deterministic mix (xorshift), so runs compare.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn ip_of(n: u64) -> String {
    format!("203.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255)
}

fn incident(i: u64, total: u64, now: Timestamp, state: &mut u64) -> Incident {
    // Spread over 90 days, oldest first, as a store fills.
    let span: u64 = 90 * 86_400 * 1000;
    let first_seen = now - SignedDuration::from_millis((span - span * i / total) as i64);
    let (rule, severity) = RULES[(next(state) % RULES.len() as u64) as usize];
    let ip = ip_of(next(state) % 50_000);
    let last_seen = first_seen + SignedDuration::from_secs((next(state) % 3600) as i64);
    let line = format!(
        "Nov 22 10:01:02 portal-{:02} sshd[811]: Failed password for root from {ip} port 51514 ssh2",
        i % 20
    );
    let evidence: Vec<Evidence> = (0..3)
        .map(|_| Evidence {
            ts: first_seen,
            source: "/var/log/auth.log".into(),
            line: line.clone(),
        })
        .collect();
    Incident {
        id: incident_id(rule, std::slice::from_ref(&ip), first_seen, 0),
        case_id: String::new(),
        rule_id: rule.into(),
        title: format!("{rule} detected"),
        title_vi: None,
        severity,
        status: Status::Open,
        first_seen,
        last_seen,
        count: 5 + next(state) % 100,
        group: BTreeMap::from([("src_ip".to_string(), ip)]),
        host: format!("portal-{:02}", i % 20),
        system: format!("system-{}", i % 5),
        level: 1 + (i % 5) as u8,
        unit: "So KH&CN tinh X".into(),
        tags: vec!["attack.credential_access".into(), "attack.t1110.001".into()],
        author: None,
        evidence,
        evidence_omitted: 2,
        history: Vec::new(),
        revision: 1,
    }
}

fn bench_store(c: &mut Criterion) {
    let total: u64 = std::env::var("SOCWATCH_BENCH_INCIDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let now = Timestamp::now();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(2000);
    for i in 0..total {
        batch.push(Change::Opened(Box::new(incident(
            i, total, now, &mut state,
        ))));
        if batch.len() == 2000 {
            store.apply(&batch, &[]).unwrap();
            batch.clear();
        }
    }
    store.apply(&batch, &[]).unwrap();
    store.flush().unwrap();
    let bytes = store.size_on_disk().unwrap();
    eprintln!(
        "filled {total} incidents in {:.1} s; {bytes} bytes on disk, {:.0} bytes per incident",
        started.elapsed().as_secs_f64(),
        bytes as f64 / total as f64
    );

    let recent_high = Query {
        min_severity: Some(Severity::High),
        since: Some(now - SignedDuration::from_hours(24)),
        limit: Some(50),
        ..Query::default()
    };
    assert_eq!(store.list(&recent_high).unwrap().len(), 50);
    let mut group = c.benchmark_group("store");
    group.sample_size(30);
    group.bench_function("list --severity high --since 24h --limit 50", |b| {
        b.iter(|| black_box(store.list(&recent_high).unwrap()))
    });
    let mut n = 0u64;
    group.bench_function("list --field src_ip=…", |b| {
        b.iter(|| {
            n = (n + 7919) % 50_000;
            let query = Query {
                fields: vec![("src_ip".into(), ip_of(n))],
                ..Query::default()
            };
            black_box(store.list(&query).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
