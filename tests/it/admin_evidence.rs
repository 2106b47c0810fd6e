//! Admin actions in the evidence log (issue 15): an operator's outbox retry through the API and the
//! rules reloaded by the folder watcher and by SIGHUP each become an `admin` leaf of the real
//! daemon's log; `socwatch verify` stays exit 0 on that store, and names an admin record edited or
//! an admin leaf rewritten afterwards.

use std::process::Command;
use std::time::{Duration, Instant};

use socwatch::evidence::Report;

use crate::daemon::Site;
use crate::evidence::Copy;

/// Polls the running daemon's own verification until it counts `records` records.
fn wait_records(client: &socwatch::api::Client, records: usize) -> Report {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report = client.verify().unwrap();
        if report.records >= records {
            return report;
        }
        assert!(Instant::now() < deadline, "only {report:?} after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn admin_actions_are_leaves_that_verify_and_their_tampering_is_named() {
    let site = Site::new(false);
    let daemon = site.start();
    let client = daemon.client();
    assert_eq!(client.outbox_retry().unwrap(), 0);
    wait_records(&client, 1);
    // The folder watcher reloads a changed rule file; SIGHUP reloads the config's rules.
    let rule = site.path("rules/test.yml");
    let text = std::fs::read_to_string(&rule).unwrap();
    std::fs::write(
        &rule,
        text.replace("title: every attempt", "title: every attempt, reloaded"),
    )
    .unwrap();
    wait_records(&client, 2);
    let hup = Command::new("kill")
        .args(["-HUP", &daemon.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let running = wait_records(&client, 3);
    assert!(running.intact, "{running:#?}");
    daemon.stop();

    let (code, report) = Copy::of(&site.path("data")).verify();
    assert_eq!(code, Some(0), "{report:#?}");
    assert_eq!(report.records, 3, "{report:#?}");
    let db_actions = {
        let store = socwatch::store::Store::open(site.path("data"), Default::default()).unwrap();
        store.admin_actions().unwrap()
    };
    let kinds: Vec<(&str, &str)> = db_actions
        .iter()
        .map(|(_, a)| (a.action.as_str(), a.by.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("outbox_retry", "admin"),
            ("rules_reloaded", "socwatch"),
            ("rules_reloaded", "socwatch")
        ]
    );
    assert_eq!(db_actions[0].1.detail, "0 dead letters requeued");
    assert!(
        db_actions[1].1.detail.starts_with("1 rules, sha256 "),
        "{db_actions:?}"
    );
    let first = db_actions[0].0.clone();

    // The retry's record says more than was done: named as altered.
    let edited = Copy::of(&site.path("data"));
    edited.tamper(|db| {
        let tree = db.open_tree("admin_actions").unwrap();
        let bytes = tree.get(first.as_bytes()).unwrap().unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let forged = text.replace("0 dead letters", "5 dead letters");
        assert_ne!(text, forged);
        tree.insert(first.as_bytes(), forged.as_bytes()).unwrap();
    });
    let (code, report) = edited.verify();
    assert_eq!(code, Some(1), "{report:#?}");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.problem == "altered" && f.subject == format!("admin {first}")),
        "{report:#?}"
    );

    // The retry's leaf rewritten to another hash: the record no longer matches it, and the signed
    // checkpoint no longer matches the log.
    let rewritten = Copy::of(&site.path("data"));
    rewritten.tamper(|db| {
        let log = db.open_tree("evidence_log").unwrap();
        let key = 0u64.to_be_bytes();
        let bytes = log.get(key).unwrap().unwrap();
        let mut leaf: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(leaf["kind"], "admin");
        leaf["hash"] = serde_json::Value::String("00".repeat(32));
        log.insert(key, serde_json::to_vec(&leaf).unwrap()).unwrap();
    });
    let (code, report) = rewritten.verify();
    assert_eq!(code, Some(1), "{report:#?}");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.problem == "altered" && f.subject == format!("admin {first}")),
        "{report:#?}"
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.subject.starts_with("log leaves")),
        "{report:#?}"
    );
}
