//! The command line as users and scripts see it: exit codes, located rule problems, output shapes.

use crate::support::{fixture, incidents, socwatch, socwatch_in, stderr, stdout};

#[test]
fn rules_check_lists_every_problem_with_file_and_line_and_exits_3() {
    let dir = fixture("broken-rules");
    let out = socwatch(&["rules", "check", "--rules", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    let expected = [
        ("problems.yml:3:", "unknown severity 'urgent'"),
        ("problems.yml:4:", "unknown key 'colour'"),
        ("problems.yml:6:", "bad regex 'unclosed (group'"),
        ("problems.yml:7:", "bad CIDR '300.1.2.3/8'"),
        ("problems.yml:8:", "bad duration '10 minutes'"),
        ("duplicate.yml:6:", "duplicate rule id 'dup-id'"),
        ("duplicate.yml:15:", "requires unknown rule 'no-such-rule'"),
        ("syntax.yaml:", "YAML syntax"),
    ];
    for (location, reason) in expected {
        assert!(
            err.lines()
                .any(|line| line.contains(location) && line.contains(reason)),
            "missing '{location} ... {reason}' in:\n{err}"
        );
    }
}

#[test]
fn rules_test_reports_passes_and_failures() {
    let ok = socwatch(&[
        "rules",
        "test",
        "--rules",
        fixture("rules").to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(
        stdout(&ok).contains("1 đạt, 0 không đạt"),
        "{}",
        stdout(&ok)
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrong.yml"),
        "id: wrong\ntitle: t\nseverity: low\nmatch: {message: 'Failed password for (?P<user>\\S+)'}\ntests:\n  - line: 'Failed password for root'\n    fields: {user: admin}\n  - line: 'Accepted password for root'\n    match: true\n",
    )
    .unwrap();
    let bad = socwatch(&["rules", "test", "--rules", dir.path().to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let text = stdout(&bad);
    assert!(
        text.contains("user: expected \"admin\", got Some(\"root\")"),
        "{text}"
    );
    assert!(text.contains("wrong.yml:8"), "{text}");
    assert!(text.contains("0 đạt, 2 không đạt"), "{text}");
}

#[test]
fn the_shipped_rules_load_and_pass_their_own_tests() {
    let check = socwatch(&["rules", "check"]);
    assert!(check.status.success(), "{}", stderr(&check));
    let test = socwatch(&["rules", "test"]);
    assert!(test.status.success(), "{}", stdout(&test));
    assert!(
        stderr(&test).is_empty() || !stderr(&test).contains("without test cases"),
        "{}",
        stderr(&test)
    );
    let list = socwatch(&["rules", "list", "--json"]);
    let rules: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert!(rules.len() >= 30, "only {} shipped rules", rules.len());
}

#[test]
fn scan_json_has_the_interface_fields() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let mut text = String::new();
    for second in 0..3 {
        text.push_str(&format!(
            "Nov 22 10:01:0{second} portal-01 sshd[811]: Failed password for root from 203.0.113.7 port 51514 ssh2\n"
        ));
    }
    std::fs::write(&log, text).unwrap();
    let rules = fixture("rules");
    let out = socwatch(&[
        "scan",
        "--json",
        "--rules",
        rules.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    let found = incidents(&out);
    assert_eq!(found.len(), 1);
    let incident = &found[0];
    for key in crate::support::INCIDENT_FIELDS {
        assert!(incident.get(key).is_some(), "missing {key} in {incident}");
    }
    assert_eq!(incident["rule_id"], "test-each-failed-password");
    assert_eq!(incident["count"], 3);
    assert_eq!(incident["status"], "open");
    assert_eq!(incident["group"]["src_ip"], "203.0.113.7");
    assert_eq!(incident["evidence"].as_array().unwrap().len(), 3);
    assert_eq!(incident["evidence"][0]["source"], log.to_str().unwrap());
    let first_seen = incident["first_seen"].as_str().unwrap();
    assert!(
        first_seen.ends_with("+07:00"),
        "RFC 3339 in Vietnam's offset: {first_seen}"
    );
    assert!(
        first_seen.parse::<jiff::Timestamp>().is_ok(),
        "{first_seen}"
    );
}

#[test]
fn scan_prints_a_table_in_the_chosen_language() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "Nov 22 10:01:02 portal-01 sshd[811]: Failed password for root from 203.0.113.7 port 51514 ssh2\n").unwrap();
    let rules = fixture("rules");
    let vi = socwatch(&[
        "scan",
        "--rules",
        rules.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(stdout(&vi).starts_with("Mã"), "{}", stdout(&vi));
    assert!(stdout(&vi).contains("Trung bình"), "{}", stdout(&vi));
    assert!(stderr(&vi).contains("Đã đọc 1 dòng"), "{}", stderr(&vi));
    let en = socwatch(&[
        "--lang",
        "en",
        "scan",
        "--rules",
        rules.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(stdout(&en).starts_with("Id"), "{}", stdout(&en));
    assert!(stdout(&en).contains("medium"), "{}", stdout(&en));
}

#[test]
fn exit_codes_follow_the_interface() {
    assert_eq!(
        socwatch(&["scan", "--no-such-flag", "x"]).status.code(),
        Some(2),
        "bad usage"
    );
    let missing = socwatch(&["scan", "/nonexistent/auth.log"]);
    assert_eq!(
        missing.status.code(),
        Some(1),
        "runtime failure: {}",
        stderr(&missing)
    );
    assert!(
        stderr(&missing).contains("/nonexistent/auth.log"),
        "{}",
        stderr(&missing)
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("socwatch.toml");
    std::fs::write(
        &config,
        "[daemon]\nlang = \"vi\"\nretention = \"forever\"\n",
    )
    .unwrap();
    let invalid = socwatch_in(
        dir.path(),
        &["--config", config.to_str().unwrap(), "config", "check"],
    );
    assert_eq!(invalid.status.code(), Some(3));
    assert!(
        stderr(&invalid).contains("socwatch.toml:3:"),
        "{}",
        stderr(&invalid)
    );

    std::fs::write(&config, "[daemon]\nlang = \"en\"\nretention = \"90d\"\n").unwrap();
    let valid = socwatch_in(
        dir.path(),
        &["--config", config.to_str().unwrap(), "config", "check"],
    );
    assert!(valid.status.success(), "{}", stderr(&valid));
    assert!(
        stdout(&valid).contains("config is valid"),
        "{}",
        stdout(&valid)
    );
}
