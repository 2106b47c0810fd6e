//! Tailer tests on real files in temporary folders: each rotation mode, checkpoints, start_at,
//! a huge line, and a property test against a model of write/rotate/truncate/delete/restart.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

fn config(paths: &[&Path], start_at: StartAt) -> TailerConfig {
    TailerConfig {
        paths: paths.iter().map(|p| p.display().to_string()).collect(),
        start_at,
        max_line_bytes: 1024,
    }
}

fn tailer(path: &Path, start_at: StartAt) -> Tailer {
    Tailer::new(config(&[path], start_at), HashMap::new()).unwrap()
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// Polls until a poll finds nothing to do; returns the lines as text.
fn drain(tailer: &mut Tailer) -> Vec<String> {
    drain_lines(tailer)
        .into_iter()
        .map(|l| String::from_utf8(l.bytes).unwrap())
        .collect()
}

fn drain_lines(tailer: &mut Tailer) -> Vec<TailedLine> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let stats = tailer.poll(&mut |line| out.push(line)).unwrap();
        if stats.lines == 0 && stats.closed == 0 && stats.opened == 0 && !stats.more {
            return out;
        }
    }
    panic!("the tailer never settled");
}

#[test]
fn appended_lines_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "a\nb\n");
    let mut t = tailer(&log, StartAt::Beginning);
    assert_eq!(drain(&mut t), ["a", "b"]);
    assert_eq!(drain(&mut t), Vec::<String>::new());
    append(&log, "c\n");
    assert_eq!(drain(&mut t), ["c"]);
}

#[test]
fn offsets_are_after_each_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "ab\ncde\n");
    let mut t = tailer(&log, StartAt::Beginning);
    let lines = drain_lines(&mut t);
    assert_eq!(
        lines.iter().map(|l| l.offset_after).collect::<Vec<_>>(),
        [3, 7]
    );
    assert_eq!(*lines[0].source, *log);
    assert_ne!(lines[0].fingerprint, 0);
}

#[test]
fn a_partial_last_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "a\nhalf");
    let mut t = tailer(&log, StartAt::Beginning);
    assert_eq!(drain(&mut t), ["a"]);
    append(&log, "-done\n");
    assert_eq!(drain(&mut t), ["half-done"]);
}

#[test]
fn rename_and_create_reads_the_old_file_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let rotated = dir.path().join("auth.log.1");
    append(&log, "1\n2\n");
    let mut t = tailer(&log, StartAt::Beginning);
    assert_eq!(drain(&mut t), ["1", "2"]);
    append(&log, "3\nunfinished");
    fs::rename(&log, &rotated).unwrap();
    append(&log, "4\n");
    // The unfinished line is handed out when the old file is closed, after a poll that found it
    // idle (its writer might still have finished it): per-file order, not across files.
    assert_eq!(drain(&mut t), ["3", "4", "unfinished"]);
    // Closed and ignored from now on: no glob names auth.log.1.
    append(&rotated, "late\n");
    append(&log, "5\n");
    assert_eq!(drain(&mut t), ["5"]);
}

#[test]
fn a_rotated_file_still_written_is_drained_before_it_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let rotated = dir.path().join("auth.log.1");
    append(&log, "1\n");
    let mut t = tailer(&log, StartAt::Beginning);
    assert_eq!(drain(&mut t), ["1"]);
    fs::rename(&log, &rotated).unwrap();
    append(&rotated, "2\n");
    let mut got = Vec::new();
    t.poll(&mut |l| got.push(l)).unwrap();
    // The writer had not reopened yet: its line lands in the old file after the rename.
    append(&rotated, "3\n");
    t.poll(&mut |l| got.push(l)).unwrap();
    let stats = t.poll(&mut |l| got.push(l)).unwrap();
    assert_eq!(stats.closed, 1);
    let text: Vec<_> = got.iter().map(|l| l.bytes.clone()).collect();
    assert_eq!(text, [b"2".to_vec(), b"3".to_vec()]);
}

#[test]
fn copytruncate_restarts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "1\n2\n3\n");
    let mut t = tailer(&log, StartAt::Beginning);
    assert_eq!(drain(&mut t), ["1", "2", "3"]);
    fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, "4\n");
    let mut stats = PollStats::default();
    let mut got = Vec::new();
    for _ in 0..2 {
        stats = t.poll(&mut |l| got.push(l.bytes)).unwrap();
        if !got.is_empty() {
            break;
        }
    }
    assert_eq!(got, [b"4".to_vec()]);
    assert_eq!(stats.truncated, 1);
}

#[test]
fn a_truncated_file_rewritten_past_the_offset_is_read_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "short\n");
    let mut t = tailer(&log, StartAt::Beginning);
    assert_eq!(drain(&mut t), ["short"]);
    // `> app.log` then a burst bigger than what was read: the size alone cannot tell.
    fs::write(&log, "a much longer first line\nsecond\n").unwrap();
    assert_eq!(drain(&mut t), ["a much longer first line", "second"]);
}

#[test]
fn delete_then_recreate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "1\n");
    let mut t = tailer(&log, StartAt::Beginning);
    assert_eq!(drain(&mut t), ["1"]);
    append(&log, "2\n");
    fs::remove_file(&log).unwrap();
    assert_eq!(drain(&mut t), ["2"], "the open handle still reads it");
    assert_eq!(t.poll(&mut |_| {}).unwrap().files, 0);
    append(&log, "3\n");
    assert_eq!(drain(&mut t), ["3"], "a recreated file is new data");
}

#[test]
fn a_retargeted_symlink_follows_the_new_target() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, link) = (
        dir.path().join("a.log"),
        dir.path().join("b.log"),
        dir.path().join("current.log"),
    );
    append(&a, "a1\n");
    append(&b, "b1\n");
    std::os::unix::fs::symlink(&a, &link).unwrap();
    let mut t = tailer(&link, StartAt::Beginning);
    assert_eq!(drain(&mut t), ["a1"]);
    append(&a, "a2\n");
    let tmp = dir.path().join("current.tmp");
    std::os::unix::fs::symlink(&b, &tmp).unwrap();
    fs::rename(&tmp, &link).unwrap();
    assert_eq!(drain(&mut t), ["a2", "b1"]);
    append(&a, "a3\n");
    append(&b, "b2\n");
    assert_eq!(drain(&mut t), ["b2"]);
}

#[test]
fn rotated_names_are_ignored_unless_a_glob_names_them() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["app.log", "app.log.1", "app.log-20261122", "app.log.2.gz"] {
        append(&dir.path().join(name), &format!("{name}\n"));
    }
    let glob = dir.path().join("*.log");
    let mut t = tailer(&glob, StartAt::Beginning);
    assert_eq!(drain(&mut t), ["app.log"]);
    let both = dir.path().join("app.log*");
    let mut t = tailer(&both, StartAt::Beginning);
    assert_eq!(drain(&mut t).len(), 4);
}

#[test]
fn start_at_end_skips_what_was_there_but_not_later_files() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.log");
    append(&old, "before\npart");
    let mut t = tailer(&dir.path().join("*.log"), StartAt::End);
    assert_eq!(drain(&mut t), Vec::<String>::new());
    append(&old, "ial\nafter\n");
    append(&dir.path().join("new.log"), "new1\n");
    assert_eq!(drain(&mut t), ["new1", "partial", "after"]);

    let mut t = tailer(&old, StartAt::Beginning);
    assert_eq!(drain(&mut t), ["before", "partial", "after"]);
}

/// Saves each line's checkpoint as the daemon would once the line is durable.
fn remember(checkpoints: &mut HashMap<FileKey, Checkpoint>, lines: &[TailedLine]) {
    for line in lines {
        let (key, cp) = line.checkpoint();
        checkpoints.insert(key, cp);
    }
}

#[test]
fn resumes_from_checkpoints_after_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "old\n");
    let mut checkpoints = HashMap::new();
    let mut t = tailer(&log, StartAt::End);
    assert!(drain_lines(&mut t).is_empty());
    append(&log, "1\n2\n");
    let lines = drain_lines(&mut t);
    assert_eq!(lines.len(), 2);
    // Only the first line's consequences became durable before the crash.
    remember(&mut checkpoints, &lines[..1]);
    drop(t);

    append(&log, "3\n");
    let mut t = Tailer::new(config(&[&log], StartAt::End), checkpoints).unwrap();
    assert_eq!(drain(&mut t), ["2", "3"]);
}

#[test]
fn catches_up_with_a_file_rotated_during_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "1\n");
    let mut checkpoints = HashMap::new();
    let mut t = tailer(&log, StartAt::Beginning);
    remember(&mut checkpoints, &drain_lines(&mut t));
    drop(t);

    append(&log, "2\n");
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, "3\n");
    let mut t = Tailer::new(config(&[&log], StartAt::End), checkpoints).unwrap();
    assert_eq!(drain(&mut t), ["2", "3"]);
}

#[test]
fn a_checkpoint_of_another_file_at_the_same_inode_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "first\nsecond\n");
    let key = FileKey::of(&fs::metadata(&log).unwrap());
    let stale = Checkpoint {
        fingerprint: 12345,
        offset: 6,
    };
    let mut t = Tailer::new(
        config(&[&log], StartAt::Beginning),
        HashMap::from([(key, stale)]),
    )
    .unwrap();
    assert_eq!(drain(&mut t), ["first", "second"]);
}

#[test]
fn a_ten_megabyte_line_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut text = "x".repeat(10 * 1024 * 1024);
    text.push_str("\nshort\n");
    append(&log, &text);
    let mut t = tailer(&log, StartAt::Beginning);
    let lines = drain_lines(&mut t);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].len, 10 * 1024 * 1024);
    assert_eq!(lines[0].bytes.len(), 1025, "cap plus one byte");
    assert_eq!(lines[1].bytes, b"short");
    assert_eq!(lines[1].offset_after, text.len() as u64);
}

#[test]
fn store_keys_round_trip() {
    let key = FileKey { dev: 2049, ino: 77 };
    assert_eq!(key.store_key(), "file:2049:77");
    assert_eq!("file:2049:77".parse(), Ok(key));
    assert!("syslog:1".parse::<FileKey>().is_err());
}

#[test]
fn literal_dirs_of_globs() {
    assert_eq!(
        literal_dir("/var/log/nginx/*access.log"),
        PathBuf::from("/var/log/nginx")
    );
    assert_eq!(
        literal_dir("/var/log/*/access.log"),
        PathBuf::from("/var/log")
    );
    assert_eq!(literal_dir("auth.log"), PathBuf::from("."));
}

// ---- property test: a model of what was written against what was read ----

#[derive(Debug, Clone)]
enum Op {
    Write { lines: usize, long: bool },
    Poll,
    RotateCreate,
    CopyTruncate,
    Delete,
    Recreate,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..6, prop::bool::weighted(0.1)).prop_map(|(lines, long)| Op::Write { lines, long }),
        3 => Just(Op::Poll),
        2 => Just(Op::RotateCreate),
        1 => Just(Op::CopyTruncate),
        1 => Just(Op::Delete),
        1 => Just(Op::Recreate),
        1 => Just(Op::Restart),
    ]
}

struct Harness {
    log: PathBuf,
    /// Rotated names are unique (like logrotate's `dateext`), so a rotated file is never
    /// overwritten while it may hold unread lines.
    rotations: usize,
    tailer: Option<Tailer>,
    checkpoints: HashMap<FileKey, Checkpoint>,
    written: Vec<String>,
    read: Vec<(FileKey, String)>,
    next: usize,
    /// The running tailer has seen the current file's first line (so holds it by identity), or a
    /// checkpoint of it was saved by one that had.
    current_known: bool,
}

impl Harness {
    fn next_rotated(&mut self) -> PathBuf {
        self.rotations += 1;
        self.log.with_extension(format!("log-{}", self.rotations))
    }

    fn poll(&mut self) {
        let tailer = match &mut self.tailer {
            Some(t) => t,
            None => self.tailer.insert(
                Tailer::new(
                    TailerConfig {
                        max_line_bytes: 4096,
                        ..config(&[&self.log], StartAt::Beginning)
                    },
                    self.checkpoints.clone(),
                )
                .unwrap(),
            ),
        };
        loop {
            let mut got = Vec::new();
            let stats = tailer.poll(&mut |l| got.push(l)).unwrap();
            remember(&mut self.checkpoints, &got);
            self.read.extend(
                got.into_iter()
                    .map(|l| (l.file_key, String::from_utf8(l.bytes).unwrap())),
            );
            if !stats.more {
                break;
            }
        }
        // What the daemon saves after a poll: positions of files with no line yet included.
        self.checkpoints.extend(tailer.positions());
        if fs::metadata(&self.log).is_ok_and(|m| m.len() > 0) {
            self.current_known = true;
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Write { lines, long } => {
                if !self.log.exists() {
                    self.current_known = false;
                }
                let mut text = String::new();
                for _ in 0..lines {
                    let pad = if long {
                        "p".repeat(1500)
                    } else {
                        String::new()
                    };
                    let line = format!("L{}{pad}", self.next);
                    self.next += 1;
                    text.push_str(&line);
                    text.push('\n');
                    self.written.push(line);
                }
                append(&self.log, &text);
            }
            Op::Poll => self.poll(),
            Op::RotateCreate => {
                // A file nobody holds by identity yet would vanish from the globs unread: the
                // daemon's inotify wake-up polls on its creation/first write, so do the same.
                if !self.current_known && self.log.exists() {
                    self.poll();
                }
                if self.log.exists() {
                    let to = self.next_rotated();
                    fs::rename(&self.log, to).unwrap();
                }
                append(&self.log, "");
                self.current_known = false;
            }
            Op::CopyTruncate => {
                // The unavoidable window: lines written after the last poll and before the
                // truncate are only in the copy. Poll first, as the inotify wake-up would.
                self.poll();
                if self.log.exists() {
                    let to = self.next_rotated();
                    fs::copy(&self.log, to).unwrap();
                    OpenOptions::new()
                        .write(true)
                        .open(&self.log)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
                // Its first line will change: what the tailer and the checkpoints know of it is
                // stale until a poll sees the new one.
                self.current_known = false;
            }
            Op::Delete => {
                // Deleting a file with unread lines loses them unless they were read first.
                self.poll();
                let _ = fs::remove_file(&self.log);
                self.current_known = false;
            }
            Op::Recreate => {
                if !self.log.exists() {
                    append(&self.log, "");
                    self.current_known = false;
                }
            }
            Op::Restart => {
                // The next poll builds a new tailer from the checkpoints; ops until then are downtime.
                self.tailer = None;
                // A restarted tailer holds nothing: a rotation before its first poll relies on the
                // saved checkpoint, which exists only for files that had a line when polled.
                if !self
                    .checkpoints
                    .keys()
                    .any(|k| fs::metadata(&self.log).is_ok_and(|m| FileKey::of(&m) == *k))
                {
                    self.current_known = false;
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_line_is_lost_or_read_twice(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut h = Harness {
            log: dir.path().join("app.log"),
            rotations: 0,
            tailer: None,
            checkpoints: HashMap::new(),
            written: Vec::new(),
            read: Vec::new(),
            next: 0,
            current_known: false,
        };
        for op in &ops {
            h.apply(op);
        }
        // Settle: poll until nothing moves (rotated files are closed after an idle poll).
        for _ in 0..4 {
            h.poll();
        }
        let read: Vec<&str> = h.read.iter().map(|(_, l)| l.as_str()).collect();
        let mut sorted = read.clone();
        sorted.sort_by_key(|l| l[1..].split('p').next().unwrap().parse::<usize>().unwrap());
        let mut dedup = sorted.clone();
        dedup.dedup();
        prop_assert_eq!(sorted.len(), dedup.len(), "a line was read twice: {:?}", read);
        let written: Vec<&str> = h.written.iter().map(String::as_str).collect();
        prop_assert_eq!(&sorted, &written, "read (sorted) vs written");
        // Per file, lines come in the order they were written.
        let mut last: HashMap<FileKey, usize> = HashMap::new();
        for (key, line) in &h.read {
            let n: usize = line[1..].split('p').next().unwrap().parse().unwrap();
            if let Some(prev) = last.insert(*key, n) {
                prop_assert!(prev < n, "out of order in one file: {:?}", read);
            }
        }
    }
}

#[test]
fn only_rotated_names_of_its_own_files_are_adopted() {
    let tailer = Tailer::new(
        TailerConfig {
            paths: vec![
                "/var/log/auth.log".into(),
                "/var/log/nginx/*access.log".into(),
            ],
            start_at: StartAt::Beginning,
            max_line_bytes: 1024,
        },
        HashMap::new(),
    )
    .unwrap();
    for (name, expected) in [
        ("/var/log/auth.log.1", true),
        ("/var/log/auth.log.2.gz", true),
        ("/var/log/auth.log-20261203", true),
        ("/var/log/nginx/portal-access.log.1", true),
        ("/var/log/syslog", false),
        ("/var/log/syslog.1", false),
        ("/var/log/auth.logger", false),
        ("/var/log/nginx/error.log.1", false),
    ] {
        assert_eq!(tailer.is_rotated_name(Path::new(name)), expected, "{name}");
    }
}

/// A writer finishes a young file's first line between the poll's look and its read (the oracle
/// of issue 10 caught it after a copytruncate and a SIGKILL: the line was read again on restart).
#[test]
fn a_first_line_finished_after_the_look_is_read_with_its_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "mark a-5");
    let mut t = tailer(&log, StartAt::Beginning);
    assert_eq!(drain(&mut t), Vec::<String>::new());

    let mut lines = Vec::new();
    {
        let (key, tracked) = t.files.iter_mut().next().expect("the file is open");
        let observed = observe(&tracked.file).unwrap();
        append(&log, "\n");
        let mut buf = Vec::new();
        let mut stats = PollStats::default();
        read_new(
            tracked,
            observed,
            *key,
            1024,
            &mut buf,
            &mut |line| lines.push(line),
            &mut stats,
        )
        .unwrap();
    }
    lines.extend(drain_lines(&mut t));

    let expected = fingerprint::fingerprint_bytes(b"mark a-5\n").unwrap().hash;
    assert_eq!(lines.len(), 1, "the line is read once");
    assert_eq!(lines[0].bytes, b"mark a-5");
    assert_eq!(
        lines[0].fingerprint, expected,
        "its checkpoint names the file a restart will find"
    );
}
