//! Issue 11, finding 10: in Vietnamese (the default), what the real binary prints for an operator
//! is Vietnamese, errors included; only technical details (paths, ids, the OS's own error text, the
//! rule parser's message, documented as English) may be English.

use std::process::Output;

use crate::store::Fixture;
use crate::support::{socwatch_in, stderr, stdout};

/// English words that must not appear in Vietnamese output (matched as whole words).
const ENGLISH: &[&str] = &[
    "cannot",
    "loaded",
    "idle",
    "passed",
    "failed",
    "acknowledged",
    "resolved",
    "error",
    "warning",
    "problem",
    "problems",
    "rules",
    "incident",
    "incidents",
    "store",
    "no such",
    "does not",
    "not found",
    "open",
    "read",
    "by",
    "ack",
    "resolve",
    "revision",
    "invalid",
    "refused",
];

/// Both streams of a run, with what may stay English cut out: the given technical strings (paths,
/// the OS error text, a parser message) and the lines of log content (evidence) that an incident
/// quotes.
fn prose(out: &Output, technical: &[&str]) -> String {
    let mut text = format!("{}\n{}", stdout(out), stderr(out));
    for t in technical {
        text = text.replace(t, " ");
    }
    text
}

/// The English words left in `text`, whole words, case-insensitive.
fn english_in(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let joined = format!(" {} ", words.join(" "));
    ENGLISH
        .iter()
        .copied()
        .filter(|w| joined.contains(&format!(" {w} ")))
        .collect()
}

fn assert_vietnamese(what: &str, out: &Output, technical: &[&str]) {
    let text = prose(out, technical);
    let left = english_in(&text);
    assert!(left.is_empty(), "{what}: English {left:?} in:\n{text}");
}

const OS_MISSING: &str = "No such file or directory (os error 2)";

#[test]
fn vietnamese_output_is_vietnamese_errors_included() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let path = root.display().to_string();

    let scan = socwatch_in(root, &["scan", "/nonexistent/auth.log"]);
    assert_eq!(scan.status.code(), Some(1));
    assert!(stderr(&scan).contains("không mở được"), "{}", stderr(&scan));
    assert_vietnamese("scan", &scan, &["/nonexistent/auth.log", OS_MISSING]);

    // A broken rule: the framing is Vietnamese, the parser's own message stays English.
    std::fs::create_dir(root.join("rules")).unwrap();
    std::fs::write(
        root.join("rules/bad.yml"),
        "id: x\ntitle: t\nseverity: high\nmatch: [\n",
    )
    .unwrap();
    let broken = socwatch_in(root, &["rules", "check", "--rules", "rules"]);
    assert_eq!(broken.status.code(), Some(3));
    let en = socwatch_in(
        root,
        &["rules", "check", "--rules", "rules", "--lang", "en"],
    );
    let parser_message = stderr(&en)
        .lines()
        .next()
        .and_then(|line| line.split_once(": "))
        .map(|(_, message)| message.to_string())
        .expect("a problem line");
    assert!(stderr(&broken).contains("lỗi"), "{}", stderr(&broken));
    assert_vietnamese(
        "rules check (broken)",
        &broken,
        &["rules/bad.yml", &parser_message],
    );
    let missing_rules = socwatch_in(root, &["rules", "check", "--rules", "/nonexistent/rules"]);
    assert_vietnamese(
        "rules check (missing)",
        &missing_rules,
        &["/nonexistent/rules", OS_MISSING],
    );

    std::fs::write(
        root.join("rules/bad.yml"),
        include_str!("../../rules/ssh.yml"),
    )
    .unwrap();
    let check = socwatch_in(root, &["rules", "check", "--rules", "rules"]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("đã nạp"), "{}", stdout(&check));
    assert_vietnamese("rules check", &check, &["rules/bad.yml"]);
    let test = socwatch_in(root, &["rules", "test", "--rules", "rules"]);
    assert!(test.status.success(), "{}", stdout(&test));
    assert!(stdout(&test).contains("đạt"), "{}", stdout(&test));
    assert_vietnamese("rules test", &test, &["rules/bad.yml"]);

    std::fs::write(
        root.join("missing.toml"),
        "[daemon]\ndata_dir = \"/nonexistent/data\"\n\n[[source.file]]\npaths = [\"/nonexistent/app.log\", \"/nonexistent/*.log\"]\n",
    )
    .unwrap();
    let config = socwatch_in(
        root,
        &["--config", "missing.toml", "config", "check", "--strict"],
    );
    assert_eq!(config.status.code(), Some(3));
    assert_vietnamese(
        "config check",
        &config,
        &[
            "/nonexistent/app.log",
            "/nonexistent/*.log",
            "[[source.file]]",
            "--strict",
        ],
    );
    let no_config = socwatch_in(
        root,
        &["--config", "/nonexistent/socwatch.toml", "config", "check"],
    );
    assert_eq!(no_config.status.code(), Some(3));
    assert_vietnamese(
        "config (missing file)",
        &no_config,
        &["/nonexistent/socwatch.toml", OS_MISSING],
    );

    let store = Fixture::new();
    let id = &store.ids[0];
    let short = &id[..10];
    let ack = store.run(&["incidents", "ack", short, "--note", "đang xem"]);
    assert!(ack.status.success(), "{}", stderr(&ack));
    assert!(
        stdout(&ack).contains("Đã tiếp nhận bởi tester"),
        "{}",
        stdout(&ack)
    );
    assert_vietnamese("incidents ack", &ack, &[id]);
    let again = store.run(&["incidents", "ack", id]);
    assert_eq!(again.status.code(), Some(1));
    assert_vietnamese("incidents ack (again)", &again, &[id]);
    let show = store.run(&["incidents", "show", id]);
    assert!(show.status.success(), "{}", stderr(&show));
    // The evidence lines are log content, quoted as they were written.
    let evidence: Vec<String> = stdout(&show)
        .lines()
        .skip_while(|l| !l.starts_with("Bằng chứng"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let mut technical: Vec<&str> = evidence.iter().map(String::as_str).collect();
    technical.push(id);
    assert_vietnamese("incidents show", &show, &technical);
    let missing = store.run(&["incidents", "show", "01JD3V6X8Q4W0Z5N2K7M9P1R3T"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_vietnamese(
        "incidents show (missing)",
        &missing,
        &["01JD3V6X8Q4W0Z5N2K7M9P1R3T"],
    );
    let short7 = store.run(&["incidents", "show", "01JD3V6"]);
    assert_vietnamese("incidents show (short id)", &short7, &["01JD3V6"]);
    let outbox = store.run(&["outbox", "status"]);
    assert!(outbox.status.success(), "{}", stderr(&outbox));
    assert_vietnamese("outbox status", &outbox, &["[forward.national]", "[email]"]);
    let retry = store.run(&["outbox", "retry"]);
    assert_vietnamese("outbox retry", &retry, &[]);

    let nowhere = socwatch_in(root, &["--config", "missing.toml", "incidents", "list"]);
    assert_eq!(nowhere.status.code(), Some(1));
    assert_vietnamese(
        "incidents (no store)",
        &nowhere,
        &["daemon.data_dir", "/nonexistent/data", &path],
    );
}

#[test]
fn the_english_word_check_can_fail() {
    assert_eq!(
        english_in("Sự cố X: acknowledged bởi tester"),
        ["acknowledged"]
    );
    assert_eq!(
        english_in("rules: 3 passed, 0 failed"),
        ["passed", "failed", "rules"]
    );
    assert_eq!(english_in("lỗi: cannot open: x"), ["cannot", "open"]);
    assert!(english_in("Sự cố X: Đã tiếp nhận bởi tester").is_empty());
}
