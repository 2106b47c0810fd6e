//! The console's queue with 1,000,000 incidents in the store (issue 13): the time to read and render
//! `GET /` (cases of the window, counters, histogram, top lists, 100 rows, HTML) for the default
//! view (active cases of the last 24 hours), a 7-day window, a severity and a text filter. Incidents are spread over 90 days and grouped
//! into cases by the real case book (24 h window per attacking address), as the daemon does.
//! `SOCWATCH_BENCH_INCIDENTS` changes the fill size.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use socwatch::api::RuleInfo;
use socwatch::cases::{Case, CaseBook, DEFAULT_WINDOW, Entity};
use socwatch::console::{Ctx, render_queue};
use socwatch::correlate::{Change, incident_id};
use socwatch::model::{Evidence, Incident, Lang, Severity, Status};
use socwatch::store::Store;

const RULES: [(&str, Severity, &str); 8] = [
    ("ssh-bruteforce", Severity::High, "attack.t1110.001"),
    ("ssh-root-login-attempt", Severity::Medium, "attack.t1078"),
    ("web-sqli", Severity::High, "attack.t1190"),
    ("web-scan", Severity::Low, "attack.t1595"),
    ("web-path-traversal", Severity::Medium, "attack.t1083"),
    ("postfix-auth-bruteforce", Severity::Medium, "attack.t1110"),
    ("sudo-auth-failure", Severity::Info, "attack.t1548"),
    ("webshell-access", Severity::Critical, "attack.t1505.003"),
];

/// A cheap deterministic mix (xorshift), so runs compare.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn incident(i: u64, total: u64, now: Timestamp, state: &mut u64) -> Incident {
    let span: u64 = 90 * 86_400 * 1000;
    let first_seen = now - SignedDuration::from_millis((span - span * i / total) as i64);
    let (rule, severity, technique) = RULES[(next(state) % RULES.len() as u64) as usize];
    let n = next(state) % 50_000;
    let ip = format!("203.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
    let last_seen = first_seen + SignedDuration::from_secs((next(state) % 3600) as i64);
    let line = format!(
        "Nov 22 10:01:02 portal-{:02} sshd[811]: Failed password for root from {ip} port 51514 ssh2",
        i % 20
    );
    let evidence = (0..3)
        .map(|_| Evidence {
            ts: first_seen,
            source: "/var/log/auth.log".into(),
            line: line.clone(),
        })
        .collect();
    let status = match next(state) % 10 {
        0..=5 => Status::Open,
        6 => Status::Acknowledged,
        7 | 8 => Status::Resolved,
        _ => Status::FalsePositive,
    };
    Incident {
        id: incident_id(rule, std::slice::from_ref(&ip), first_seen, i),
        case_id: String::new(),
        rule_id: rule.into(),
        title: format!("{rule} detected"),
        title_vi: None,
        severity,
        status,
        first_seen,
        last_seen,
        count: 5 + next(state) % 100,
        group: BTreeMap::from([("src_ip".to_string(), ip)]),
        host: format!("portal-{:02}", i % 20),
        system: format!("system-{}", i % 5),
        level: 1 + (i % 5) as u8,
        unit: "So KH&CN tinh X".into(),
        tags: vec!["attack.credential_access".into(), technique.into()],
        author: None,
        evidence,
        evidence_omitted: 2,
        history: Vec::new(),
        revision: 1,
    }
}

fn bench_console(c: &mut Criterion) {
    let total: u64 = std::env::var("SOCWATCH_BENCH_INCIDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let now = Timestamp::now();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut book = CaseBook::new(DEFAULT_WINDOW);
    let started = Instant::now();
    let mut changes = Vec::with_capacity(2000);
    let mut cases: HashMap<String, Case> = HashMap::new();
    let flush = |changes: &mut Vec<Change>, cases: &mut HashMap<String, Case>| {
        let batch: Vec<Case> = cases.drain().map(|(_, case)| case).collect();
        store.apply_batch(changes, &batch, &[], &[]).unwrap();
        changes.clear();
    };
    for i in 0..total {
        let mut incident = incident(i, total, now, &mut state);
        let entity = Entity::of(&incident, |_| None);
        let case = book.opened(&mut incident, entity, false, "bench").clone();
        cases.insert(case.id.clone(), case);
        changes.push(Change::Opened(Box::new(incident)));
        if changes.len() == 2000 {
            flush(&mut changes, &mut cases);
        }
    }
    flush(&mut changes, &mut cases);
    store.flush().unwrap();
    eprintln!(
        "filled {total} incidents in {} cases in {:.1} s; {} bytes on disk",
        store.case_count(),
        started.elapsed().as_secs_f64(),
        store.size_on_disk().unwrap()
    );

    let rules: Vec<RuleInfo> = RULES
        .iter()
        .map(|(id, severity, technique)| RuleInfo {
            id: id.to_string(),
            title: format!("{id} detected"),
            title_vi: None,
            severity: *severity,
            tags: vec!["attack.credential_access".into(), technique.to_string()],
            file: "bench".into(),
        })
        .collect();
    let views: [(&str, Vec<(String, String)>); 5] = [
        ("queue, default view (active, 24 h)", vec![]),
        ("queue, 7 d, active", vec![("since".into(), "7d".into())]),
        (
            "queue, 24 h, any status",
            vec![
                ("since".into(), "24h".into()),
                ("status".into(), "any".into()),
            ],
        ),
        (
            "queue, 24 h, severity high+",
            vec![
                ("since".into(), "24h".into()),
                ("severity".into(), "high".into()),
            ],
        ),
        (
            "queue, 24 h, text 203.0.1",
            vec![
                ("since".into(), "24h".into()),
                ("q".into(), "203.0.1".into()),
            ],
        ),
    ];
    let mut group = c.benchmark_group("console");
    group.sample_size(20);
    for (name, query) in views {
        let ctx = Ctx::detached(Lang::Vi, query);
        let html = render_queue(&store, &ctx, &rules, Timestamp::now()).unwrap();
        assert!(html.contains("<table class=\"queue\""), "{name}: no rows");
        group.bench_function(name, |b| {
            b.iter(|| black_box(render_queue(&store, &ctx, &rules, Timestamp::now()).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_console);
criterion_main!(benches);
