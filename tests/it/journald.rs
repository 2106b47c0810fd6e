//! The journald source against real journal files: entries written in the Journal Export Format by
//! the real `systemd-journal-remote` (Debian's `systemd-journal-remote`, installed by `.ci/run`),
//! read back by the real `journalctl` that `sources::journald::run` spawns.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use socwatch::config::{JournaldSource, StartAt};
use socwatch::decode::{DecodeContext, Decoder, prepare_line};
use socwatch::model::Format;
use socwatch::sources::journald::{JournalLine, JournaldStats, Limits, run};
use tokio::sync::{mpsc, oneshot};
use toml::Spanned;

const WAIT: Duration = Duration::from_secs(20);
const BOOT_ID: &str = "6b1f7e2cb1b14b6a9c8f0b9f1e2d3c4a";
/// 03/12/2026 14:00:00 UTC, in microseconds; entry `n` is logged `n` seconds later.
const BASE_MICROS: u64 = 1_796_306_400_000_000;

/// One journal entry: its fields in order, values as bytes.
struct Entry(Vec<(&'static str, Vec<u8>)>);

impl Entry {
    /// An entry `n` seconds after `BASE_MICROS` from `ident` (pid 1000 + n) on host `journal-host`.
    fn new(n: u64, ident: &str, message: &str) -> Entry {
        Entry(vec![
            (
                "__REALTIME_TIMESTAMP",
                (BASE_MICROS + n * 1_000_000).to_string().into(),
            ),
            ("__MONOTONIC_TIMESTAMP", (1_000 + n).to_string().into()),
            ("_BOOT_ID", BOOT_ID.into()),
            ("_HOSTNAME", "journal-host".into()),
            ("SYSLOG_IDENTIFIER", ident.into()),
            ("_PID", (1000 + n).to_string().into()),
            ("MESSAGE", message.into()),
        ])
    }

    fn with(mut self, name: &'static str, value: &[u8]) -> Entry {
        self.0.retain(|(field, _)| *field != name);
        self.0.push((name, value.to_vec()));
        self
    }

    fn without(mut self, name: &str) -> Entry {
        self.0.retain(|(field, _)| *field != name);
        self
    }
}

/// The Journal Export Format (systemd's JOURNAL_EXPORT_FORMATS): `NAME=value` lines, or for a value
/// with a line break or bytes that are not text, `NAME`, its length as 64-bit little endian, the bytes.
fn export(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        for (name, value) in &entry.0 {
            out.extend_from_slice(name.as_bytes());
            let text = std::str::from_utf8(value).is_ok_and(|t| !t.contains('\n'));
            if text {
                out.push(b'=');
            } else {
                out.push(b'\n');
                out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            }
            out.extend_from_slice(value);
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out
}

fn journal_remote() -> PathBuf {
    ["/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .expect("systemd-journal-remote is installed (apt-get install systemd-journal-remote; .ci/run does)")
}

/// Writes `entries` into the journal file `path` (created, or appended to) with the real writer.
async fn write_journal(path: &Path, entries: &[Entry]) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(journal_remote())
        .arg(format!("--output={}", path.display()))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run systemd-journal-remote");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&export(entries)).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "systemd-journal-remote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The cursors the real journalctl gives for the entries of a file, read independently of socwatch.
fn cursors_of(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("journalctl")
        .arg(format!("--file={}", path.display()))
        .args(["--output=json", "--no-pager"])
        .output()
        .expect("run journalctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            entry["__CURSOR"].as_str().unwrap().to_string()
        })
        .collect()
}

fn source_for(path: &Path, start_at: StartAt) -> JournaldSource {
    JournaldSource {
        files: Spanned::new(0..0, vec![path.display().to_string()]),
        start_at,
        ..JournaldSource::default()
    }
}

/// A running source with its channel (small, so back-pressure is exercised) and counters.
struct Running {
    rx: mpsc::Receiver<JournalLine>,
    stats: Arc<JournaldStats>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(source: JournaldSource, after_cursor: Option<String>) -> Running {
        let (tx, rx) = mpsc::channel(2);
        let (stop, stopped) = oneshot::channel::<()>();
        let stats = Arc::new(JournaldStats::default());
        let limits = Limits {
            restart_min: Duration::from_millis(100),
            ..Limits::default()
        };
        let task = tokio::spawn(run(
            source,
            after_cursor,
            tx,
            stats.clone(),
            limits,
            async {
                let _ = stopped.await;
            },
        ));
        Running {
            rx,
            stats,
            stop: Some(stop),
            task,
        }
    }

    async fn next(&mut self) -> JournalLine {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a journal line in time")
            .expect("the source is running")
    }

    /// The message part of the next lines, up to and including the one that ends with `last`.
    async fn messages_until(&mut self, last: &str) -> Vec<String> {
        let mut messages = Vec::new();
        loop {
            let message = message_of(&self.next().await);
            let done = message == last;
            messages.push(message);
            if done {
                return messages;
            }
            assert!(messages.len() < 1000, "{last} never came: {messages:?}");
        }
    }

    async fn shut(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("the source stops in time")
            .expect("the source task does not panic");
    }

    fn count(&self, counter: impl Fn(&JournaldStats) -> &std::sync::atomic::AtomicU64) -> u64 {
        counter(&self.stats).load(Ordering::Relaxed)
    }

    /// Waits until `condition` holds on the counters.
    async fn wait_for(&self, what: &str, condition: impl Fn(&JournaldStats) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !condition(&self.stats) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What the syslog decoder reads as the line's message.
fn message_of(line: &JournalLine) -> String {
    let prepared = prepare_line(&line.bytes, 64 * 1024);
    let mut decoder = Decoder::new(Format::Syslog, context());
    decoder.decode(&prepared.text).message().to_string()
}

fn context() -> DecodeContext {
    DecodeContext::new(
        jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap(),
        "2001-01-01T00:00:00Z".parse().unwrap(),
    )
}

fn numbered(range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    range
        .map(|n| Entry::new(n, "app", &format!("entry {n}")))
        .collect()
}

#[tokio::test]
async fn entries_arrive_as_decoded_lines_with_their_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.journal");
    write_journal(
        &path,
        &[
            Entry::new(
                1,
                "sshd",
                "Failed password for root from 203.0.113.5 port 22 ssh2",
            )
            .with("_SYSTEMD_UNIT", b"ssh.service"),
            Entry::new(2, "sudo", "alice : TTY=pts/0 ; COMMAND=/bin/sh"),
            Entry::new(3, "CRON", "(root) CMD (run-parts /etc/cron.hourly)").without("_PID"),
        ],
    )
    .await;
    let mut source = Running::start(source_for(&path, StartAt::Beginning), None);
    let mut lines = Vec::new();
    for _ in 0..3 {
        lines.push(source.next().await);
    }
    source.shut().await;
    assert_eq!(
        String::from_utf8_lossy(&lines[0].bytes),
        "2026-12-03T14:00:01.000000+00:00 journal-host sshd[1001]: Failed password for root from 203.0.113.5 port 22 ssh2"
    );
    let decoded: Vec<String> = lines
        .iter()
        .map(|line| {
            let prepared = prepare_line(&line.bytes, 64 * 1024);
            let mut decoder = Decoder::new(Format::Syslog, context());
            let event = decoder.decode(&prepared.text);
            assert!(!event.parse_error, "{}", prepared.text);
            let field = |name| event.get(name).unwrap_or("-").to_string();
            format!(
                "{} {} {} {} {} | {}",
                event.ts.unwrap(),
                field("host"),
                field("program"),
                field("pid"),
                event.logsource.service.as_deref().unwrap_or("-"),
                event.message()
            )
        })
        .collect();
    assert_eq!(
        decoded,
        [
            "2026-12-03T14:00:01Z journal-host sshd 1001 sshd | Failed password for root from 203.0.113.5 port 22 ssh2",
            "2026-12-03T14:00:02Z journal-host sudo 1002 sudo | alice : TTY=pts/0 ; COMMAND=/bin/sh",
            "2026-12-03T14:00:03Z journal-host CRON - cron | (root) CMD (run-parts /etc/cron.hourly)",
        ]
    );
    let cursors: Vec<String> = lines.into_iter().map(|line| line.cursor).collect();
    assert_eq!(cursors, cursors_of(&path));
    assert_eq!(source.count(|s| &s.lines), 3);
}

#[tokio::test]
async fn resuming_after_a_saved_cursor_yields_exactly_the_following_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.journal");
    // More than the 10 entries `journalctl --follow` shows by default, through a channel of 2.
    write_journal(&path, &numbered(1..=30)).await;
    let mut first = Running::start(source_for(&path, StartAt::Beginning), None);
    let mut saved = None;
    for n in 1..=12 {
        let line = first.next().await;
        assert_eq!(message_of(&line), format!("entry {n}"));
        saved = Some(line.cursor);
    }
    first.shut().await;

    // `start_at = "end"` only applies without a cursor.
    let mut resumed = Running::start(source_for(&path, StartAt::End), saved);
    let got = resumed.messages_until("entry 30").await;
    let expected: Vec<String> = (13..=30).map(|n| format!("entry {n}")).collect();
    assert_eq!(got, expected);
    // Still following: an entry written now comes next, so nothing else was pending.
    write_journal(&path, &numbered(31..=31)).await;
    assert_eq!(message_of(&resumed.next().await), "entry 31");
    resumed.shut().await;
}

#[tokio::test]
async fn a_first_start_at_the_end_skips_what_is_there_and_follows_what_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.journal");
    write_journal(&path, &numbered(1..=5)).await;
    let mut source = Running::start(source_for(&path, StartAt::End), None);
    // journalctl seeks to the end when it starts, which this test cannot see: append until one
    // arrives. Whatever arrives must be appended, never one of the five that were there.
    let mut n = 100;
    let first = loop {
        write_journal(&path, &[Entry::new(n, "app", &format!("appended {n}"))]).await;
        match tokio::time::timeout(Duration::from_millis(500), source.rx.recv()).await {
            Ok(line) => break line.expect("the source is running"),
            Err(_) => n += 1,
        }
        assert!(n < 140, "no appended entry arrived");
    };
    // The entries appended since the first that arrived follow it, in order, and nothing else.
    let last = format!("appended {n}");
    let mut got = vec![message_of(&first)];
    if got[0] != last {
        got.extend(source.messages_until(&last).await);
    }
    let start: u64 = got[0]["appended ".len()..].parse().unwrap();
    let expected: Vec<String> = (start..=n).map(|k| format!("appended {k}")).collect();
    assert_eq!(got, expected);
    write_journal(&path, &[Entry::new(200, "app", "one more")]).await;
    assert_eq!(message_of(&source.next().await), "one more");
    source.shut().await;
}

#[tokio::test]
async fn a_cursor_saved_before_a_reboot_resumes_through_the_rest_of_that_boot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.journal");
    let next_boot = |entry: Entry| entry.with("_BOOT_ID", b"22222222222222222222222222222222");
    let mut entries = numbered(1..=4);
    entries.extend(numbered(5..=6).into_iter().map(next_boot));
    write_journal(&path, &entries).await;
    let saved = cursors_of(&path)[1].clone();
    let mut source = Running::start(source_for(&path, StartAt::End), Some(saved));
    let got = source.messages_until("entry 6").await;
    assert_eq!(got, ["entry 3", "entry 4", "entry 5", "entry 6"]);
    source.shut().await;
}

#[tokio::test]
async fn units_and_identifiers_filter_the_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.journal");
    let ssh = |entry: Entry| entry.with("_SYSTEMD_UNIT", b"ssh.service");
    write_journal(
        &path,
        &[
            ssh(Entry::new(1, "sshd", "ssh 1")),
            Entry::new(2, "CRON", "cron").with("_SYSTEMD_UNIT", b"cron.service"),
            Entry::new(3, "sudo", "sudo 1"),
            ssh(Entry::new(4, "sshd", "ssh 2")),
            Entry::new(5, "su", "su"),
            ssh(Entry::new(6, "sudo", "last")),
        ],
    )
    .await;
    let names = |names: &[&str]| Spanned::new(0..0, names.iter().map(|n| n.to_string()).collect());
    let cases = [
        (
            names(&["ssh.service"]),
            names(&[]),
            vec!["ssh 1", "ssh 2", "last"],
        ),
        (
            names(&[]),
            names(&["sudo", "su"]),
            vec!["sudo 1", "su", "last"],
        ),
        // Both lists: an entry must match both (journalctl's rule).
        (names(&["ssh.service"]), names(&["sudo"]), vec!["last"]),
        (
            names(&["cron.service", "ssh.service"]),
            names(&[]),
            vec!["ssh 1", "cron", "ssh 2", "last"],
        ),
    ];
    for (units, identifiers, expected) in cases {
        let config = JournaldSource {
            units,
            identifiers,
            ..source_for(&path, StartAt::Beginning)
        };
        let mut source = Running::start(config.clone(), None);
        assert_eq!(source.messages_until("last").await, expected, "{config:?}");
        source.shut().await;
    }
}

#[tokio::test]
async fn a_binary_message_is_kept_and_one_without_a_message_is_skipped_both_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.journal");
    write_journal(
        &path,
        &[
            Entry::new(1, "bin", "").with("MESSAGE", b"half\xff\x00binary\nline\n"),
            Entry::new(2, "app", "").without("MESSAGE"),
            Entry::new(3, "app", "after"),
        ],
    )
    .await;
    let mut source = Running::start(source_for(&path, StartAt::Beginning), None);
    let binary = source.next().await;
    assert_eq!(
        binary.bytes,
        b"2026-12-03T14:00:01.000000+00:00 journal-host bin[1001]: half\xff#000binary#012line"
            .to_vec()
    );
    let prepared = prepare_line(&binary.bytes, 64 * 1024);
    assert!(prepared.flags.invalid_utf8);
    assert_eq!(message_of(&binary), "half\u{fffd}#000binary#012line");
    assert_eq!(message_of(&source.next().await), "after");
    assert_eq!(source.count(|s| &s.binary_messages), 1);
    assert_eq!(source.count(|s| &s.missing_message), 1);
    assert_eq!(source.count(|s| &s.lines), 2);
    assert_eq!(source.count(|s| &s.malformed), 0);
    source.shut().await;
}

/// Whether a process is still there, running or as a zombie nobody reaped.
fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn stop_kills_and_reaps_journalctl() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.journal");
    write_journal(&path, &numbered(1..=1)).await;
    let mut source = Running::start(source_for(&path, StartAt::Beginning), None);
    source.next().await;
    let pid = source.stats.child_pid.load(Ordering::Relaxed);
    assert!(pid > 0 && process_exists(pid), "journalctl runs as {pid}");
    source.shut().await;
    assert!(
        !process_exists(pid),
        "journalctl {pid} is gone once run returns"
    );
    assert_eq!(source.stats.child_pid.load(Ordering::Relaxed), 0);
    // Stopping while the channel is full (the source waits on it) works the same.
    write_journal(&path, &numbered(2..=20)).await;
    let mut blocked = Running::start(source_for(&path, StartAt::Beginning), None);
    blocked
        .wait_for("a full channel", |s| s.lines.load(Ordering::Relaxed) >= 2)
        .await;
    let pid = blocked.stats.child_pid.load(Ordering::Relaxed);
    blocked.shut().await;
    assert!(pid > 0 && !process_exists(pid), "journalctl {pid} is gone");
}

#[tokio::test]
async fn a_killed_journalctl_is_started_again_after_the_last_entry_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    // A journal folder, as a copy of /var/log/journal would be.
    let path = dir.path().join("system.journal");
    write_journal(&path, &numbered(1..=3)).await;
    let config = JournaldSource {
        directory: Some(Spanned::new(0..0, dir.path().to_path_buf())),
        start_at: StartAt::Beginning,
        ..JournaldSource::default()
    };
    let mut source = Running::start(config, None);
    assert_eq!(source.messages_until("entry 3").await.len(), 3);
    let pid = source.stats.child_pid.load(Ordering::Relaxed);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    source
        .wait_for("a new journalctl", |s| {
            let now = s.child_pid.load(Ordering::Relaxed);
            s.restarts.load(Ordering::Relaxed) == 1 && now != 0 && now != pid
        })
        .await;
    write_journal(&path, &numbered(4..=5)).await;
    assert_eq!(
        source.messages_until("entry 5").await,
        ["entry 4", "entry 5"]
    );
    assert_eq!(source.count(|s| &s.lines), 5);
    source.shut().await;
}

#[tokio::test]
async fn a_cursor_journalctl_refuses_is_dropped_for_start_at() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.journal");
    write_journal(&path, &numbered(1..=2)).await;
    let mut source = Running::start(
        source_for(&path, StartAt::Beginning),
        Some("not a cursor".into()),
    );
    assert_eq!(
        source.messages_until("entry 2").await,
        ["entry 1", "entry 2"]
    );
    assert_eq!(source.count(|s| &s.restarts), 1);
    source.shut().await;
}

#[tokio::test]
async fn a_missing_journal_folder_is_retried_until_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("later");
    let config = JournaldSource {
        directory: Some(Spanned::new(0..0, folder.clone())),
        start_at: StartAt::Beginning,
        ..JournaldSource::default()
    };
    let mut source = Running::start(config, None);
    source
        .wait_for("two failed starts", |s| {
            s.restarts.load(Ordering::Relaxed) >= 2
        })
        .await;
    std::fs::create_dir(&folder).unwrap();
    write_journal(&folder.join("system.journal"), &numbered(1..=1)).await;
    assert_eq!(message_of(&source.next().await), "entry 1");
    source.shut().await;
}

/// `socwatch run` with a `[[source.journald]]` over a real journal file: entries become incidents,
/// and the cursor saved with each batch makes a SIGTERM or a SIGKILL lose and repeat nothing.
#[test]
fn the_daemon_reads_the_journal_and_resumes_after_its_saved_cursor() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = crate::daemon::Site::new(false);
    let journal = site.path("copy.journal");
    let entries = |range: std::ops::Range<u64>| -> Vec<Entry> {
        range
            .map(|n| {
                Entry::new(
                    n,
                    "app",
                    &format!("attempt {n} from 198.51.100.{}", n % 2 + 1),
                )
            })
            .collect()
    };
    runtime.block_on(write_journal(&journal, &entries(0..10)));
    site.add_config(&format!(
        "[[source.journald]]\nfiles = [\"{}\"]\nstart_at = \"beginning\"\nsystem = \"mail\"\nlevel = 2\n",
        journal.display()
    ));
    let daemon = site.start();
    assert_eq!(daemon.wait_for(10), 2, "one incident per address");
    let incidents = daemon
        .client()
        .list(&socwatch::query::Filters::default())
        .unwrap();
    assert!(
        incidents
            .iter()
            .all(|i| i.system == "mail" && i.level == 2 && i.host == "journal-host"),
        "{incidents:?}"
    );
    let status = daemon.client().status().unwrap();
    let journal_row = status
        .sources
        .iter()
        .find(|s| s.kind == "journald")
        .unwrap_or_else(|| panic!("status lists the journal source: {:?}", status.sources));
    assert_eq!(journal_row.lines, 10, "{journal_row:?}");
    daemon.stop();

    // Written while the daemon was down: read once after the restart, from the saved cursor.
    runtime.block_on(write_journal(&journal, &entries(10..15)));
    let daemon = site.start();
    daemon.wait_for(15);
    daemon.kill9();
    runtime.block_on(write_journal(&journal, &entries(15..20)));
    let daemon = site.start();
    assert_eq!(daemon.wait_for(20), 2, "still one incident per address");
    daemon.stop();
}

/// With the built-in defaults (no source configured) the daemon reads this machine's journal when
/// it has one, and says so when it has neither the journal nor any default file.
#[test]
fn the_built_in_defaults_watch_the_journal_or_say_there_is_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = socwatch::config::Config::parse("c.toml", "").unwrap();
    let journals = socwatch::daemon::journald_sources(&config);
    if socwatch::sources::journald::journal_available() {
        assert_eq!(journals.len(), 1, "the machine's journal is watched");
        assert!(journals[0].files.get_ref().is_empty() && journals[0].directory.is_none());
    } else {
        assert!(journals.is_empty());
        let nothing_exists = socwatch::daemon::DEFAULT_LOGS
            .iter()
            .all(|path| !Path::new(path).exists());
        if nothing_exists {
            // Run the daemon on the built-in defaults: it must say it watches nothing yet.
            let conf = dir.path().join("port0.toml");
            std::fs::write(&conf, "[api]\nlisten = \"127.0.0.1:0\"\n").unwrap();
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_socwatch"))
                .arg("run")
                .current_dir(dir.path())
                .env("SOCWATCH_CONFIG", &conf)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut lines =
                std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
            let warned = lines
                .by_ref()
                .map_while(Result::ok)
                .take_while(|line| !line.contains("correlation state restored"))
                .any(|line| line.contains("no log to watch yet"));
            let _ = child.kill();
            let _ = child.wait();
            assert!(warned, "a daemon that watches nothing must say so");
        }
    }
}

/// The built-in defaults watch every default file, present or not, so one that appears later (nginx
/// installed next week) is read; a configured source replaces them all.
#[test]
fn the_built_in_defaults_watch_default_files_that_do_not_exist_yet() {
    let defaults = socwatch::config::Config::parse("c.toml", "").unwrap();
    let paths: Vec<String> = socwatch::daemon::file_sources(&defaults)
        .into_iter()
        .flat_map(|source| source.paths)
        .collect();
    assert_eq!(paths, socwatch::daemon::DEFAULT_LOGS.map(String::from));
    let configured = socwatch::config::Config::parse(
        "c.toml",
        "[[source.syslog]]\nlisten = \"127.0.0.1:5514\"\n",
    )
    .unwrap();
    assert!(socwatch::daemon::file_sources(&configured).is_empty());
    assert!(socwatch::daemon::journald_sources(&configured).is_empty());
}
