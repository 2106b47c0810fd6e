//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The crate's own folder, for fixtures.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(path: &str) -> PathBuf {
    crate_dir().join("tests/fixtures").join(path)
}

/// Runs the real `socwatch` binary with no config from the environment or /etc.
pub fn socwatch(args: &[&str]) -> Output {
    socwatch_in(&crate_dir(), args)
}

pub fn socwatch_in(dir: &Path, args: &[&str]) -> Output {
    let empty_config = std::env::temp_dir().join("socwatch-it-empty.toml");
    std::fs::write(&empty_config, "").expect("write empty config");
    Command::new(env!("CARGO_BIN_EXE_socwatch"))
        .args(args)
        .current_dir(dir)
        .env("SOCWATCH_CONFIG", &empty_config)
        .output()
        .expect("run socwatch")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses `scan --json` output.
pub fn incidents(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "socwatch failed: {}\n{}",
        stderr(out),
        stdout(out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", stdout(out)))
}

/// The shared third-party corpus: `$SOCWATCH_CORPUS`, else `../shared/corpus` beside the crate.
pub fn corpus_dir() -> PathBuf {
    std::env::var_os("SOCWATCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join("../shared/corpus"))
}

/// The incident fields INTERFACE.md promises in every incident JSON object.
pub const INCIDENT_FIELDS: [&str; 16] = [
    "id",
    "rule_id",
    "title",
    "severity",
    "status",
    "first_seen",
    "last_seen",
    "count",
    "group",
    "host",
    "system",
    "level",
    "unit",
    "tags",
    "evidence",
    "history",
];

/// The zone the daemon and scan tests set explicitly (`daemon.timezone`, `scan --timezone`), so
/// the machine's own zone never decides what an RFC 3164 stamp means.
pub const ZONE: &str = "Asia/Ho_Chi_Minh";

/// `ts` as an RFC 3164 stamp (`Nov  2 10:00:10`) in `ZONE`, to the second.
pub fn rfc3164(ts: jiff::Timestamp) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = ts.to_zoned(jiff::tz::TimeZone::get(ZONE).unwrap());
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[local.month() as usize - 1],
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    )
}
