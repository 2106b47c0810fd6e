//! fail2ban's annotated sample logs through the shipped rules.
//!
//! The samples are GPL test data kept outside the repository (`../shared/corpus/fail2ban`, or
//! `$SOCWATCH_CORPUS/fail2ban`); they are read here as input and nothing of them is copied into the
//! product. Annotation format: `../shared/corpus/fail2ban/README.md`.
//!
//! For every covered filter:
//! - each `"match": true` case that names an address (`host`, else `ip4`/`ip6`) must be matched by
//!   at least one shipped rule whose `src_ip` equals it (case-insensitively);
//! - each `"match": false` case (and each un-annotated line) must be matched by no shipped rule,
//!   rules with `requires` aside (they need earlier incidents, which a single line cannot give).
//!
//! How fail2ban's filter modes map onto socwatch: socwatch has one rule set, no modes. For sshd,
//! dovecot, postfix, apache-auth and nginx-http-auth it detects what fail2ban's `aggressive` mode
//! detects (the union of the other modes: ddos, extra, auth, rbl, errors, fallback); the other
//! filters have only their normal mode. So:
//! - `match: true` cases are checked whatever mode block they sit in (every mode is part of the union);
//! - `match: false` cases are checked when their block lists the normal mode or socwatch's mode; a
//!   "no" stated only for a narrower mode (e.g. postfix `errors`, which ignores everything except
//!   "too many errors") says nothing about the union, and is skipped and counted;
//! - constraints: `name == 'sshd'` holds for the sshd files, `opts.get('mode')` is socwatch's mode.
//!
//! A few cases cannot hold for a line-by-line matcher or contradict the mode choice above; they are
//! listed in `KNOWN` with the reason, and the test fails if an entry is no longer used.
//!
//! Each line is decoded with the format detected from the file's non-comment lines (zone
//! Europe/Zurich, "now" 2005-08-14 12:00 CEST as in fail2ban's harness). The sample files
//! concatenate lines from different sources (e.g. apache's own error log and apache via syslog);
//! a line the file's format cannot parse is decoded as auto-detected, as it would be in a file of
//! its own.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use socwatch::decode::{DecodeContext, Decoder, detect_format, prepare_line};
use socwatch::model::{Format, SourceMeta};
use socwatch::rules::RuleSet;

/// Sample file, fail2ban filter it belongs to, and whether socwatch plays that filter's aggressive mode.
const COVERED: &[(&str, &str, bool)] = &[
    ("sshd", "sshd", true),
    ("sshd-journal", "sshd", true),
    ("apache-auth", "apache-auth", true),
    ("apache-noscript", "apache-noscript", false),
    ("apache-overflows", "apache-overflows", false),
    ("nginx-http-auth", "nginx-http-auth", true),
    ("nginx-botsearch", "nginx-botsearch", false),
    ("postfix", "postfix", true),
    ("dovecot", "dovecot", true),
    ("sendmail-auth", "sendmail-auth", false),
    ("courier-auth", "courier-auth", false),
    ("vsftpd", "vsftpd", false),
    ("proftpd", "proftpd", false),
    ("pure-ftpd", "pure-ftpd", false),
    ("mysqld-auth", "mysqld-auth", false),
    ("named-refused", "named-refused", false),
];

/// Cases not meant to be caught as annotated: (files, text in the line, annotated match, reason).
const KNOWN: &[(&[&str], &str, bool, &str)] = &[
    (
        &["sshd", "sshd-journal"],
        "Disconnecting: Too many authentication failures",
        true,
        "multi-line: the address is on an earlier line of the same sshd process (fail2ban joins \
         lines by pid); this line names no address",
    ),
    (
        &["sshd", "sshd-journal"],
        "fatal: Read from socket failed: Connection reset by peer [preauth]",
        true,
        "multi-line: the address is on an earlier line of the same sshd process",
    ),
    (
        &["sshd"],
        "error: kex_exchange_identification: ",
        true,
        "multi-line: the address is on an earlier line of the same sshd process",
    ),
    (
        &["sshd", "sshd-journal"],
        "fatal: Unable to negotiate a key exchange method [preauth]",
        true,
        "multi-line: the address is on an earlier line of the same sshd process",
    ),
    (
        &["sshd", "sshd-journal"],
        "fatal: no matching mac found: client ",
        true,
        "multi-line: the address is on an earlier line of the same sshd process",
    ),
    (
        &["sshd", "sshd-journal"],
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=sudoer rhost=192.0.2.114",
        true,
        "multi-line: fail2ban fails the second user name tried within one connection; a \
         pam_unix(sshd:auth) line alone is no failure (sshd also logs `Failed password` for the \
         same attempt, which ssh-bruteforce counts), as the neighbouring `match: false` cases say",
    ),
    (
        &["sshd", "sshd-journal"],
        "Disconnected from authenticating user admin 192.0.2.6 port 33553 [preauth]",
        false,
        "no failure only in fail2ban's normal mode (the connection was already counted); in its \
         extra/aggressive modes, which ssh-preauth-flood follows, the same line is a failure (see \
         the `Disconnected from authenticating user root 192.0.2.6` case of the same file)",
    ),
    (
        &["dovecot"],
        "(no auth attempts",
        false,
        "no failure only in fail2ban's normal mode; its aggressive mode, which \
         mail-dovecot-no-auth-flood follows (low severity, 20 in 10 minutes), counts these lines, \
         and the file's aggressive block annotates the same lines as failures",
    ),
    (
        &["apache-auth"],
        "[evasive20:error]",
        false,
        "no failure only in fail2ban's normal mode; the file's aggressive block annotates the same \
         line as a failure",
    ),
];

/// One annotated line.
struct Case {
    line_no: usize,
    expect: serde_json::Value,
    /// The option sets of the `filterOptions` block the case sits in (after `test.condition`).
    modes: Vec<String>,
    text: String,
}

/// `name == 'sshd'`, `opts.get('mode') == 'aggressive'` and `!= 'aggressive'`: the forms the
/// corpus uses (README). Anything else is a new form this test must learn about.
fn eval_condition(expr: &str, filter: &str, mode: &str) -> bool {
    let expr = expr.replace(' ', "");
    let (lhs, rhs, negate) = if let Some((l, r)) = expr.split_once("!=") {
        (l.to_string(), r.to_string(), true)
    } else if let Some((l, r)) = expr.split_once("==") {
        (l.to_string(), r.to_string(), false)
    } else {
        panic!("unknown condition form: {expr}");
    };
    let rhs = rhs.trim_matches(|c| c == '\'' || c == '"');
    let value = match lhs.as_str() {
        "name" => filter,
        "opts.get('mode')" | "opts.get(\"mode\")" => mode,
        other => panic!("unknown condition operand: {other}"),
    };
    (value == rhs) != negate
}

fn parse_cases(text: &str, filter: &str, our_mode: &str) -> Vec<Case> {
    let directive = regex::Regex::new(r"^#+ ?(failJSON|fileOptions|filterOptions|addFILE):(.+)$")
        .expect("valid regex");
    let mut cases = Vec::new();
    let mut file_options = serde_json::Map::new();
    let mut modes = vec!["normal".to_string()];
    let mut pending: Option<serde_json::Value> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(caps) = directive.captures(line) {
            let json: serde_json::Value = serde_json::from_str(caps[2].trim())
                .unwrap_or_else(|e| panic!("line {}: bad JSON in directive: {e}", index + 1));
            match &caps[1] {
                "failJSON" => pending = Some(json),
                "fileOptions" => {
                    file_options = json.as_object().cloned().unwrap_or_default();
                }
                "filterOptions" => {
                    let sets = match json {
                        serde_json::Value::Array(sets) => sets,
                        one => vec![one],
                    };
                    modes = sets
                        .iter()
                        .filter_map(|set| {
                            let mut merged = file_options.clone();
                            merged.extend(set.as_object().cloned().unwrap_or_default());
                            let enabled = merged
                                .get("test.condition")
                                .and_then(|c| c.as_str())
                                .is_none_or(|c| eval_condition(c, filter, our_mode));
                            enabled.then(|| {
                                merged
                                    .get("mode")
                                    .and_then(|m| m.as_str())
                                    .unwrap_or("normal")
                                    .to_string()
                            })
                        })
                        .collect();
                }
                _ => {} // addFILE: every covered file is listed on its own.
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        cases.push(Case {
            line_no: index + 1,
            expect: pending
                .take()
                .unwrap_or_else(|| serde_json::json!({"match": false})),
            modes: modes.clone(),
            text: line.to_string(),
        });
    }
    cases
}

#[derive(Default)]
struct Tally {
    true_checked: usize,
    true_ok: usize,
    false_checked: usize,
    false_ok: usize,
    skipped: BTreeMap<&'static str, usize>,
}

#[test]
fn fail2ban_samples_through_shipped_rules() {
    let dir = crate::support::corpus_dir().join("fail2ban/logs");
    assert!(
        dir.is_dir(),
        "fail2ban corpus not found at {} (put ../shared beside the crate or set SOCWATCH_CORPUS)",
        dir.display()
    );
    let rules = RuleSet::shipped();
    let zone = TimeZone::get("Europe/Zurich").expect("zone in the bundled tzdb");
    let reference: Timestamp = "2005-08-14T12:00:00+02:00"
        .parse()
        .expect("valid timestamp");
    let mut known_used = vec![0usize; KNOWN.len()];
    let mut failures = Vec::new();
    let mut report = Vec::new();

    for &(file, filter, aggressive) in COVERED {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let text = String::from_utf8_lossy(&bytes);
        let our_mode = if aggressive { "aggressive" } else { "normal" };
        let cases = parse_cases(&text, filter, our_mode);
        let sample: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
        let format = detect_format(&sample);
        let ctx = DecodeContext::new(zone.clone(), reference);
        let mut decoder = Decoder::new(format, ctx.clone());
        let mut fallback = Decoder::new(Format::Auto, ctx);
        let meta = SourceMeta::new(format!("fail2ban/{file}"));
        let mut tally = Tally::default();

        for case in &cases {
            let expect_match = case.expect.get("match").and_then(|m| m.as_bool()) == Some(true);
            if let Some(constraint) = case.expect.get("constraint").and_then(|c| c.as_str())
                && !eval_condition(constraint, filter, our_mode)
            {
                *tally
                    .skipped
                    .entry("constraint excludes socwatch's mode")
                    .or_default() += 1;
                continue;
            }
            if !expect_match && !case.modes.iter().any(|m| m == "normal" || m == our_mode) {
                *tally
                    .skipped
                    .entry("\"no\" stated only for a narrower fail2ban mode")
                    .or_default() += 1;
                continue;
            }
            let host = ["host", "ip4", "ip6"]
                .iter()
                .find_map(|k| case.expect.get(*k).and_then(|h| h.as_str()));
            if expect_match && host.is_none() {
                *tally
                    .skipped
                    .entry("match without an address to compare")
                    .or_default() += 1;
                continue;
            }
            let known = KNOWN.iter().position(|(files, needle, m, _)| {
                files.contains(&file) && *m == expect_match && case.text.contains(needle)
            });

            let prepared = prepare_line(case.text.as_bytes(), usize::MAX);
            let mut event = decoder.decode(&prepared.text);
            if event.parse_error {
                event = fallback.decode(&prepared.text);
            }
            let hits: Vec<(String, Option<String>)> = rules
                .matches(&event, &meta)
                .into_iter()
                .filter(|m| expect_match || rules.rule(m.rule).requires.is_none())
                .map(|m| {
                    let ip = RuleSet::field_value(&event, &meta, &m.captured, "src_ip")
                        .map(str::to_string);
                    (rules.rule(m.rule).id.clone(), ip)
                })
                .collect();
            let ok = match host {
                Some(host) if expect_match => hits.iter().any(|(_, ip)| {
                    ip.as_deref()
                        .is_some_and(|ip| ip.eq_ignore_ascii_case(host))
                }),
                _ => hits.is_empty(),
            };
            if let Some(k) = known {
                known_used[k] += 1;
                *tally.skipped.entry("listed in KNOWN").or_default() += 1;
                if ok {
                    eprintln!(
                        "note: {file}:{} is listed in KNOWN but now passes",
                        case.line_no
                    );
                }
                continue;
            }
            if expect_match {
                tally.true_checked += 1;
                tally.true_ok += usize::from(ok);
            } else {
                tally.false_checked += 1;
                tally.false_ok += usize::from(ok);
            }
            if !ok {
                failures.push(format!(
                    "{file}:{}: expected {}, rules gave {:?}\n    {}",
                    case.line_no,
                    match host {
                        Some(h) if expect_match => format!("a match with src_ip {h}"),
                        _ => "no match".to_string(),
                    },
                    hits,
                    case.text
                ));
            }
        }
        let skipped: Vec<String> = tally
            .skipped
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        let line = format!(
            "{file}: {}/{} true matched, {}/{} false clean{}",
            tally.true_ok,
            tally.true_checked,
            tally.false_ok,
            tally.false_checked,
            if skipped.is_empty() {
                String::new()
            } else {
                format!(" (skipped: {})", skipped.join(", "))
            }
        );
        println!("{line}");
        report.push(line);
    }

    eprintln!("fail2ban corpus, shipped rules:\n  {}", report.join("\n  "));
    for (entry, used) in KNOWN.iter().zip(&known_used) {
        if *used == 0 {
            failures.push(format!(
                "KNOWN entry no longer used (remove it): {:?} in {:?}",
                entry.1, entry.0
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The share of all of fail2ban's `match: true` lines (every filter) the shipped rules flag, at least.
/// Raised with each class of detection added; a drop is a regression.
const RECALL_FLOOR: f64 = 0.67;

/// Per-filter recall, like fail2ban-regex reports its own filters: for every sample file, how many of
/// the lines fail2ban's filter must flag one of the shipped rules matches (with the annotated address
/// as `src_ip` when the annotation names one), and how many lines annotated harmless one matches.
/// Every filter counts, covered or not, with no `KNOWN` exceptions: this is the measure, the test
/// above is the contract. Prints the table the README quotes.
#[test]
fn fail2ban_recall_per_filter() {
    let dir = crate::support::corpus_dir().join("fail2ban/logs");
    assert!(
        dir.is_dir(),
        "fail2ban corpus not found at {}",
        dir.display()
    );
    let rules = RuleSet::shipped();
    let zone = TimeZone::get("Europe/Zurich").expect("zone in the bundled tzdb");
    let reference: Timestamp = "2005-08-14T12:00:00+02:00"
        .parse()
        .expect("valid timestamp");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("read corpus folder")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut rows = Vec::new();
    let (mut all_true, mut all_flagged, mut all_false, mut all_fp) = (0usize, 0, 0, 0);
    for file in &files {
        let text = String::from_utf8_lossy(&std::fs::read(dir.join(file)).expect("read sample"))
            .into_owned();
        // Every filter is measured in its widest mode, as socwatch has one rule set.
        let filter = file.as_str();
        let cases = parse_cases(&text, filter, "aggressive");
        let sample: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
        let ctx = DecodeContext::new(zone.clone(), reference);
        let mut decoder = Decoder::new(detect_format(&sample), ctx.clone());
        let mut fallback = Decoder::new(Format::Auto, ctx);
        let meta = SourceMeta::new(format!("fail2ban/{file}"));
        let (mut trues, mut flagged, mut falses, mut fps) = (0usize, 0usize, 0usize, 0usize);
        let mut rule_ids = std::collections::BTreeSet::new();
        for case in &cases {
            if let Some(constraint) = case.expect.get("constraint").and_then(|c| c.as_str())
                && !eval_condition(constraint, filter, "aggressive")
            {
                continue;
            }
            let expect_match = case.expect.get("match").and_then(|m| m.as_bool()) == Some(true);
            if !expect_match && !case.modes.iter().any(|m| m == "normal") {
                continue;
            }
            let host = ["host", "ip4", "ip6"]
                .iter()
                .find_map(|k| case.expect.get(*k).and_then(|h| h.as_str()));
            let prepared = prepare_line(case.text.as_bytes(), usize::MAX);
            let mut event = decoder.decode(&prepared.text);
            if event.parse_error {
                event = fallback.decode(&prepared.text);
            }
            let hits: Vec<(String, Option<String>)> = rules
                .matches(&event, &meta)
                .into_iter()
                .filter(|m| rules.rule(m.rule).requires.is_none())
                .map(|m| {
                    let ip = RuleSet::field_value(&event, &meta, &m.captured, "src_ip")
                        .map(str::to_string);
                    (rules.rule(m.rule).id.clone(), ip)
                })
                .collect();
            if expect_match {
                trues += 1;
                let hit = hits.iter().find(|(_, ip)| match host {
                    Some(host) => ip
                        .as_deref()
                        .is_some_and(|ip| ip.eq_ignore_ascii_case(host)),
                    None => true,
                });
                if let Some((id, _)) = hit {
                    flagged += 1;
                    rule_ids.insert(id.clone());
                } else if std::env::var_os("SOCWATCH_RECALL_MISSES").is_some() {
                    eprintln!("miss {file}:{}: {} {:?}", case.line_no, case.text, hits);
                }
            } else {
                falses += 1;
                fps += usize::from(!hits.is_empty());
            }
        }
        if trues + falses == 0 {
            continue;
        }
        all_true += trues;
        all_flagged += flagged;
        all_false += falses;
        all_fp += fps;
        let rules_used: Vec<String> = rule_ids.into_iter().collect();
        rows.push(format!(
            "| {file} | {flagged}/{trues} | {} | {fps}/{falses} | {} |",
            percent(flagged, trues),
            if rules_used.is_empty() {
                "–".to_string()
            } else {
                rules_used.join(", ")
            }
        ));
    }
    let total = all_flagged as f64 / all_true.max(1) as f64;
    println!("| filter | flagged | recall | harmless flagged | rules |");
    println!("|---|---:|---:|---:|---|");
    for row in &rows {
        println!("{row}");
    }
    println!(
        "| **all {} filters** | **{all_flagged}/{all_true}** | **{}** | {all_fp}/{all_false} | |",
        rows.len(),
        percent(all_flagged, all_true)
    );
    assert!(
        total >= RECALL_FLOOR,
        "recall over fail2ban's samples fell to {:.3} (floor {RECALL_FLOOR})",
        total
    );
}

fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        "–".to_string()
    } else {
        format!("{:.0} %", 100.0 * part as f64 / whole as f64)
    }
}
