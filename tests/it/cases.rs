//! Cases (issue 12) as operators meet them: the real daemon on the shipped rules gathers one
//! attack's incidents into one case, mails it once, and resolving the case resolves its incidents;
//! `scan --cases` on the generator's auth.log gives one case per attacker it flags and none for
//! its benign categories.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use socwatch::query::Filters;

use crate::daemon::Site;
use crate::email::{Pki, SmtpServer, body};
use crate::support::{crate_dir, socwatch, stderr, stdout};

const ATTACKER: &str = "203.0.113.7";
const WEB_ATTACKER: &str = "198.51.100.9";

/// An sshd line with an ISO stamp (rsyslog's format), `second` seconds after 10:00 on 22/11/2026.
fn sshd(second: u32, text: &str) -> String {
    let (h, m, s) = (10 + second / 3600, second / 60 % 60, second % 60);
    format!(
        "2026-11-22T{h:02}:{m:02}:{s:02}+07:00 portal-01 sshd[{}]: {text}",
        4000 + second
    )
}

fn everything() -> Filters {
    Filters {
        limit: Some(100_000),
        ..Filters::default()
    }
}

/// Polls `check` (a deadline, no fixed sleep) until it gives a value.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} after 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_root_brute_force_and_its_login_are_one_critical_case_mailed_once_and_resolved_together() {
    let pki = Pki::new();
    // The mail server defers everything until the whole attack is in: what the hold does in
    // production (wait for the rest of the attack) happens here whatever the machine's speed.
    let site = Site::new(false);
    let mail_ok = site.path("mail-ok");
    let server = SmtpServer::start_refusing("none", &pki, &mail_ok);
    site.use_shipped_rules();
    site.add_config(&format!(
        "[email]\nsmtp = \"127.0.0.1:{}\"\nsecurity = \"none\"\nfrom = \"socwatch <soc@example.gov.vn>\"\n\
         to = [\"oncall@example.gov.vn\"]\nmin_severity = \"high\"\nmax_per_hour = 20\ncase_hold = \"0s\"\n\n\
         [[source.file]]\npaths = [\"{}\"]\nstart_at = \"beginning\"\nsystem = \"dvc-portal\"\nlevel = 3\n",
        server.port,
        site.path("logs/access.log").display()
    ));
    let daemon = site.start();
    site.point_cli_at(&daemon);

    // 10,000 failed root passwords, one a second, then the password works.
    let mut lines: Vec<String> = (0..10_000)
        .map(|n| {
            sshd(
                n,
                &format!(
                    "Failed password for root from {ATTACKER} port {} ssh2",
                    30000 + n % 20000
                ),
            )
        })
        .collect();
    lines.push(sshd(
        10_000,
        &format!("Accepted password for root from {ATTACKER} port 51000 ssh2"),
    ));
    let ssh_lines = lines.len() as u64;
    site.append(lines);
    // Another address goes for the web portal.
    let web: Vec<String> = (0..3)
        .map(|n| {
            format!(
                "{WEB_ATTACKER} - - [22/Nov/2026:10:0{n}:00 +0700] \"GET /dichvucong/tracuu?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users-- HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\""
            )
        })
        .collect();
    site.append_to("logs/access.log", web);
    daemon.wait_stored("", ssh_lines + 3);

    let client = daemon.client();
    let cases = eventually("two cases", || {
        let cases = client.cases(&everything()).ok()?;
        (cases.len() >= 2).then_some(cases)
    });
    let of = |address: &str| -> Vec<_> {
        cases
            .iter()
            .filter(|c| {
                c.entities
                    .get("src_ip")
                    .is_some_and(|v| v.iter().any(|a| a == address))
            })
            .cloned()
            .collect()
    };
    let ssh = of(ATTACKER);
    assert_eq!(ssh.len(), 1, "one attack, one case: {cases:#?}");
    let ssh = &ssh[0];
    assert_eq!(ssh.severity.as_str(), "critical", "{ssh:#?}");
    let mut by_address = everything();
    by_address.fields = vec![format!("src_ip={ATTACKER}")];
    let incidents = client.list(&by_address).unwrap();
    let fired: BTreeSet<&str> = incidents.iter().map(|i| i.rule_id.as_str()).collect();
    for rule in [
        "ssh-bruteforce",
        "ssh-root-login-attempt",
        "ssh-login-after-bruteforce",
    ] {
        assert!(fired.contains(rule), "{rule} fired: {fired:?}");
    }
    assert!(
        incidents.iter().all(|i| i.case_id == ssh.id),
        "every incident that fired is in the case"
    );
    let listed: BTreeSet<&str> = ssh.incidents.iter().map(|i| i.id.as_str()).collect();
    let stored: BTreeSet<&str> = incidents.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(listed, stored);
    assert_eq!(
        ssh.tactics.first().map(String::as_str),
        Some("credential_access")
    );
    let web = of(WEB_ATTACKER);
    assert_eq!(web.len(), 1, "the web attack is another case: {cases:#?}");
    assert_ne!(web[0].id, ssh.id);

    // Email: one message per case once the outbox is drained, the SSH one listing every rule.
    std::fs::write(&mail_ok, "").unwrap();
    client.outbox_retry().unwrap();
    eventually("the email outbox drained", || {
        let report = client.outbox().ok()?;
        let email = report
            .destinations
            .iter()
            .find(|d| d.destination == "email")?;
        (email.pending == 0 && email.state.delivered >= 2).then_some(())
    });
    let messages = server.messages(2);
    assert_eq!(messages.len(), 2, "one email per case: {messages:#?}");
    let about_ssh: Vec<_> = messages
        .iter()
        .filter(|m| m["subject"].as_str().unwrap_or("").contains(ATTACKER))
        .collect();
    assert_eq!(about_ssh.len(), 1, "{messages:#?}");
    let text = body(about_ssh[0], "text");
    for rule in &fired {
        assert!(text.contains(rule), "the case email lists {rule}: {text}");
    }

    // The CLI shows the case; resolving it resolves every incident in it.
    let config = site.path("socwatch.toml");
    let config = config.to_str().unwrap();
    let short = &ssh.id[..14];
    let out = socwatch(&["--config", config, "--lang", "en", "cases", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(short) && stdout(&out).contains("critical"),
        "{}",
        stdout(&out)
    );
    let out = socwatch(&["--config", config, "--lang", "vi", "cases", "show", short]);
    assert!(
        stdout(&out).contains("Nghiêm trọng") && stdout(&out).contains("credential_access"),
        "{}",
        stdout(&out)
    );
    let out = socwatch(&[
        "--config",
        config,
        "cases",
        "resolve",
        short,
        "--note",
        "chặn tại tường lửa",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for incident in client.list(&by_address).unwrap() {
        assert_eq!(
            socwatch::store::status_name(incident.status),
            "resolved",
            "{incident:?}"
        );
        let last = incident.history.last().unwrap();
        assert_eq!(last.action, "resolve");
        assert!(last.note.contains("tường lửa"), "{last:?}");
    }
    let resolved = client.case(&ssh.id).unwrap();
    assert_eq!(resolved.history.last().unwrap().note, "chặn tại tường lửa");

    // Reopened through the API, assigned and closed as a false positive from the CLI: the false
    // positives are counted per rule.
    let reopened = client
        .case_action(&ssh.id, "reopen", None, "xem lại", None)
        .unwrap();
    assert_eq!(socwatch::store::status_name(reopened.status), "open");
    assert!(
        reopened
            .incidents
            .iter()
            .all(|i| socwatch::store::status_name(i.status) == "open")
    );
    let out = socwatch(&["--config", config, "cases", "assign", short, "--to", "lan"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        client.case(&ssh.id).unwrap().assignee.as_deref(),
        Some("lan")
    );
    let out = socwatch(&["--config", config, "cases", "false-positive", short]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = socwatch(&["--config", config, "rules", "list", "--stats", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stats: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let brute = stats
        .iter()
        .find(|s| s["rule_id"] == "ssh-bruteforce")
        .unwrap();
    assert_eq!(brute["false_positives"], 1, "{brute}");
    assert_eq!(brute["open"], 0, "{brute}");
    daemon.stop();
}

/// The generator's auth.log with its ground truth: `(log, truth)`.
fn generated(lines: usize) -> (tempfile::TempDir, PathBuf, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let generator = crate_dir().join("../shared/bench/gen_logs.py");
    let out = Command::new("python3")
        .arg(&generator)
        .args([
            "--auth-lines",
            &lines.to_string(),
            "--nginx-lines",
            "0",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap_or_else(|err| panic!("run {}: {err}", generator.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = dir.path().join(format!("auth-{lines}.log"));
    let truth = dir.path().join(format!("auth-{lines}.truth.json"));
    let truth = serde_json::from_slice(&std::fs::read(truth).unwrap()).unwrap();
    (dir, log, truth)
}

/// Cases per attacking address from `scan --cases --json` with `[cases] window = window`.
fn cases_per_address(
    dir: &std::path::Path,
    log: &std::path::Path,
    window: &str,
) -> BTreeMap<String, usize> {
    let config = dir.join(format!("cases-{window}.toml"));
    std::fs::write(&config, format!("[cases]\nwindow = \"{window}\"\n")).unwrap();
    let out = socwatch(&[
        "--config",
        config.to_str().unwrap(),
        "scan",
        "--cases",
        "--json",
        "--timezone",
        "UTC",
        log.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cases: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for case in &cases {
        assert_eq!(case["entity"]["kind"], "address", "{case}");
        *per.entry(case["entity"]["value"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    per
}

#[test]
fn the_generated_auth_log_gives_one_case_per_flagged_attacker_and_none_for_benign_ones() {
    let (dir, log, truth) = generated(40_000);
    // The attackers: the generator's brute-forcers (fast ones, flagged by its 10-minute rule) and
    // its slow ones (`bf_slow`: a few tries an hour, which `ssh-bruteforce-slow` is for). Benign:
    // `near_miss` (2-4 root typos) and `legit_typo` (a failure or two, then the right password).
    let mut attackers: BTreeSet<String> = truth["expected_flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip.as_str().unwrap().to_string())
        .collect();
    let per_ip = truth["per_ip"].as_object().unwrap();
    let category = |wanted: &str| -> BTreeSet<String> {
        per_ip
            .iter()
            .filter(|(_, info)| info["category"] == wanted)
            .map(|(ip, _)| ip.clone())
            .collect()
    };
    attackers.extend(category("bf_slow"));
    let benign: BTreeSet<String> = category("near_miss")
        .union(&category("legit_typo"))
        .cloned()
        .collect();
    assert!(
        attackers.len() > 20 && benign.len() > 20,
        "{} {}",
        attackers.len(),
        benign.len()
    );

    // A window longer than the file: each attacker is exactly one case.
    let long = cases_per_address(dir.path(), &log, "30d");
    let with_case: BTreeSet<String> = long.keys().cloned().collect();
    let flagged_benign: Vec<_> = with_case.intersection(&benign).collect();
    assert!(
        flagged_benign.is_empty(),
        "cases for benign addresses: {flagged_benign:?}"
    );
    let missed: Vec<_> = attackers.difference(&with_case).collect();
    assert!(missed.is_empty(), "attackers without a case: {missed:?}");
    assert_eq!(with_case, attackers, "no case for anyone else");
    assert!(long.values().all(|&n| n == 1), "one case each: {long:?}");

    // The default 24 h window: still nobody benign, every attacker at least one case; an attacker
    // silent for more than a day starts a second one.
    let default = cases_per_address(dir.path(), &log, "24h");
    assert_eq!(default.keys().cloned().collect::<BTreeSet<_>>(), attackers);
}
