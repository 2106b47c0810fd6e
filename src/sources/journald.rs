//! The systemd journal as a source (`[[source.journald]]`): entries read through the machine's own
//! `journalctl --output=json --follow`, each turned into one rsyslog-style line
//! (`2026-12-03T14:00:00.123456+00:00 HOST IDENT[PID]: MESSAGE`) that the syslog decoder reads like a
//! line of `/var/log/syslog`, and handed out with the entry's cursor, from which a restart resumes.
//!
//! Why `journalctl` and not libsystemd: `journalctl` is the reader that ships with the journal the
//! machine writes, so every file format version, compression (zstd, lz4, xz), rotation, vacuuming and
//! the cursor rules are systemd's own and stay right through systemd upgrades. Linking `sd-journal`
//! would need `unsafe` FFI in a crate that forbids it, libsystemd's headers at build time and one
//! library version baked into the binary; a pure Rust reader would re-implement a file format that
//! keeps growing. The cost is one child process per source and a JSON parse per entry.
//!
//! The child is spawned directly (no shell) with fixed options and one argument per configured
//! value (`--unit=NAME`, `--file=GLOB`), plus the cursor the store handed back: log content never
//! reaches a command line, and no configured value can become another option.

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::config::{JournaldSource, StartAt};

/// The reader, found on `PATH` like an administrator would run it.
const JOURNALCTL: &str = "journalctl";

/// The fields a line is built from; journalctl always adds `__CURSOR` and `__REALTIME_TIMESTAMP`.
/// Naming them keeps large fields (core dumps, binary blobs) out of the pipe.
const OUTPUT_FIELDS: &str = "MESSAGE,_HOSTNAME,SYSLOG_IDENTIFIER,_COMM,_PID,SYSLOG_PID";

/// One journal entry as a line for the decoders, with the cursor to resume after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalLine {
    /// journalctl's `__CURSOR` of the entry: save it with what the line produced, pass it back to `run`.
    pub cursor: String,
    /// `TIMESTAMP HOST IDENT[PID]: MESSAGE`, without a line end; not necessarily UTF-8 (binary
    /// messages are kept as they are, for `decode::prepare_line` to replace and flag).
    pub bytes: Vec<u8>,
}

/// What `entry_to_line` makes of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: JournalLine,
    /// The MESSAGE was binary (journalctl prints it as an array of bytes): kept, counted.
    pub binary_message: bool,
}

/// Why an entry gives no line. Counted by `run`, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("journal entry is not a JSON object")]
    NotAnObject,
    #[error("journal entry has no __CURSOR")]
    NoCursor,
    #[error("journal entry has no valid __REALTIME_TIMESTAMP")]
    NoTimestamp,
    #[error("journal entry has no MESSAGE")]
    NoMessage,
}

/// Counters for `/metrics` and the logs, shared with the running source.
#[derive(Debug, Default)]
pub struct JournaldStats {
    /// Lines handed to the channel.
    pub lines: AtomicU64,
    /// Entries whose MESSAGE was binary (kept, lossily decoded later).
    pub binary_messages: AtomicU64,
    /// Entries without a MESSAGE (skipped).
    pub missing_message: AtomicU64,
    /// Output that was not an entry: not JSON, no cursor, no time (skipped).
    pub malformed: AtomicU64,
    /// Entries longer than `Limits::max_entry_bytes` as JSON (skipped).
    pub oversized: AtomicU64,
    /// Times journalctl was started again after it stopped or could not start.
    pub restarts: AtomicU64,
    /// The running journalctl's process id, 0 while none runs.
    pub child_pid: AtomicU32,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest entry read, as journalctl's JSON; a longer one is skipped and counted. Binary
    /// messages take about four bytes of JSON per byte.
    pub max_entry_bytes: usize,
    /// The first wait before starting journalctl again; it doubles up to `restart_max`.
    pub restart_min: Duration,
    pub restart_max: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entry_bytes: 16 * 1024 * 1024,
            restart_min: Duration::from_secs(1),
            restart_max: Duration::from_secs(60),
        }
    }
}

/// Where journalctl starts reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// After the entry with this cursor (a saved position, or the last entry handed out).
    AfterCursor(String),
    /// After the last entry there is now.
    End,
    /// At the first entry logged at this time or later.
    Since(Timestamp),
    /// At the oldest entry.
    Beginning,
}

/// journalctl's arguments for a source: fixed options, then one argument per configured value.
pub fn journalctl_args(source: &JournaldSource, start: &Start) -> Vec<String> {
    let mut args: Vec<String> = [
        "--output=json",
        // Fields over 4 KiB would otherwise be printed as null.
        "--all",
        "--no-pager",
        "--follow",
        // `--follow` alone limits journalctl 252 to the current boot, so a cursor saved before a
        // reboot would skip the rest of that boot; `--merge` lifts that (and adds the remote journals
        // of a journal-remote receiver to this machine's journal).
        "--merge",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.push(format!("--output-fields={OUTPUT_FIELDS}"));
    if let Some(dir) = &source.directory {
        args.push(format!("--directory={}", dir.get_ref().display()));
    }
    args.extend(source.files.get_ref().iter().map(|f| format!("--file={f}")));
    args.extend(source.units.get_ref().iter().map(|u| format!("--unit={u}")));
    args.extend(
        source
            .identifiers
            .get_ref()
            .iter()
            .map(|i| format!("--identifier={i}")),
    );
    match start {
        Start::AfterCursor(cursor) => {
            args.push(format!("--after-cursor={cursor}"));
            args.push("--no-tail".into());
        }
        Start::End => args.push("--lines=0".into()),
        Start::Since(ts) => {
            args.push(format!(
                "--since=@{}.{:06}",
                ts.as_second(),
                ts.subsec_microsecond()
            ));
            args.push("--no-tail".into());
        }
        Start::Beginning => args.push("--no-tail".into()),
    }
    args
}

/// Follows the journal until `stop` completes, handing each entry to `tx` as a line. Starts after
/// `after_cursor` when there is one, else where `source.start_at` says. A full channel makes it
/// wait (journalctl then waits on its pipe): nothing is dropped. When journalctl stops or cannot
/// start, the error is logged and it is started again after a backoff, after the last entry handed
/// out; a saved cursor journalctl refuses is dropped (logged) and the source starts per `start_at`.
/// Returns when `stop` completes or the channel closes, with journalctl killed and reaped.
pub async fn run(
    source: JournaldSource,
    after_cursor: Option<String>,
    tx: mpsc::Sender<JournalLine>,
    stats: Arc<JournaldStats>,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let name = source.name();
    let mut cursor = after_cursor;
    // A first start at the end, restarted before any entry came, resumes from when it first started.
    let mut first_start: Option<Timestamp> = None;
    let mut delay = limits.restart_min;
    loop {
        let start = match (&cursor, source.start_at, first_start) {
            (Some(cursor), _, _) => Start::AfterCursor(cursor.clone()),
            (None, StartAt::Beginning, _) => Start::Beginning,
            (None, StartAt::End, None) => Start::End,
            (None, StartAt::End, Some(since)) => Start::Since(since),
        };
        first_start.get_or_insert_with(Timestamp::now);
        let started = Instant::now();
        let outcome = follow(
            &source,
            &start,
            &tx,
            &stats,
            &limits,
            &mut cursor,
            stop.as_mut(),
        )
        .await;
        let (status, last_error, entries) = match outcome {
            Outcome::Stopped | Outcome::ChannelClosed => return,
            Outcome::Exited {
                status,
                last_error,
                entries,
            } => (status, last_error, entries),
        };
        if entries == 0 && matches!(start, Start::AfterCursor(_)) && last_error.contains("cursor") {
            tracing::error!(
                source = %name,
                cursor = cursor.as_deref().unwrap_or_default(),
                error = %last_error,
                "journalctl refused the saved cursor: starting per start_at"
            );
            cursor = None;
        }
        if started.elapsed() >= limits.restart_max {
            delay = limits.restart_min;
        }
        tracing::error!(
            source = %name,
            status = %status,
            error = %last_error,
            "journalctl stopped: starting it again in {delay:?}"
        );
        tokio::select! {
            biased;
            () = stop.as_mut() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(limits.restart_max);
        stats.restarts.fetch_add(1, Ordering::Relaxed);
    }
}

enum Outcome {
    Stopped,
    ChannelClosed,
    /// journalctl ended (or could not start): how, its last complaint, and how many entries it gave.
    Exited {
        status: String,
        last_error: String,
        entries: u64,
    },
}

/// One journalctl run: spawn, read entries until it ends or `stop`, kill and reap it.
async fn follow(
    source: &JournaldSource,
    start: &Start,
    tx: &mpsc::Sender<JournalLine>,
    stats: &JournaldStats,
    limits: &Limits,
    cursor: &mut Option<String>,
    mut stop: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Outcome {
    let spawned = Command::new(JOURNALCTL)
        .args(journalctl_args(source, start))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // If this future is dropped instead of stopped, the child still goes.
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            return Outcome::Exited {
                status: "not started".into(),
                last_error: format!("cannot run {JOURNALCTL}: {err}"),
                entries: 0,
            };
        }
    };
    stats
        .child_pid
        .store(child.id().unwrap_or(0), Ordering::Relaxed);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        unreachable!("both pipes were asked for");
    };
    let name = source.name();
    let reading = async {
        let mut reader = EntryReader {
            name: &name,
            stdout: BufReader::with_capacity(64 * 1024, stdout),
            tx,
            stats,
            limits,
            cursor,
            entries: 0,
        };
        let mut ended = reader.run(stop.as_mut()).await;
        let entries = reader.entries;
        let mut status = String::new();
        if let Reading::Ended = ended {
            // It closed its output; it should be exiting, but a stop must not wait for that.
            tokio::select! {
                biased;
                () = stop.as_mut() => ended = Reading::Stopped,
                waited = child.wait() => status = match waited {
                    Ok(status) => status.to_string(),
                    Err(err) => format!("unknown ({err})"),
                },
            }
        }
        if !matches!(ended, Reading::Ended) {
            // SIGKILL and wait: the child is reaped before `run` returns.
            if let Err(err) = child.kill().await {
                tracing::warn!(source = %name, error = %err, "cannot stop journalctl");
            }
        }
        (ended, status, entries)
    };
    // Both in this task: stderr closes when the child ends, whichever way it ends.
    let ((ended, status, entries), last_error) =
        tokio::join!(reading, log_stderr(BufReader::new(stderr), &name));
    stats.child_pid.store(0, Ordering::Relaxed);
    match ended {
        Reading::Stopped => Outcome::Stopped,
        Reading::ChannelClosed => Outcome::ChannelClosed,
        Reading::Ended => Outcome::Exited {
            status,
            last_error,
            entries,
        },
    }
}

enum Reading {
    Stopped,
    ChannelClosed,
    /// journalctl closed its output.
    Ended,
}

struct EntryReader<'a, R> {
    /// The source's name, for the logs.
    name: &'a str,
    stdout: R,
    tx: &'a mpsc::Sender<JournalLine>,
    stats: &'a JournaldStats,
    limits: &'a Limits,
    /// The last entry seen, so a restart neither repeats nor skips one.
    cursor: &'a mut Option<String>,
    entries: u64,
}

impl<R: AsyncBufRead + Unpin> EntryReader<'_, R> {
    async fn run(&mut self, mut stop: std::pin::Pin<&mut impl Future<Output = ()>>) -> Reading {
        let mut buf = Vec::new();
        loop {
            let read = tokio::select! {
                biased;
                () = stop.as_mut() => return Reading::Stopped,
                read = read_capped_line(&mut self.stdout, &mut buf, self.limits.max_entry_bytes) => read,
            };
            let len = match read {
                Ok(Some(len)) => len,
                Ok(None) => return Reading::Ended,
                Err(err) => {
                    tracing::warn!(source = %self.name, error = %err, "cannot read journalctl's output");
                    return Reading::Ended;
                }
            };
            if len > self.limits.max_entry_bytes {
                self.stats.oversized.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    source = %self.name,
                    bytes = len,
                    "journal entry longer than the cap: skipped"
                );
                continue;
            }
            let Some(line) = self.convert(&buf) else {
                continue;
            };
            let cursor = line.cursor.clone();
            tokio::select! {
                biased;
                () = stop.as_mut() => return Reading::Stopped,
                sent = self.tx.send(line) => if sent.is_err() {
                    return Reading::ChannelClosed;
                },
            }
            self.stats.lines.fetch_add(1, Ordering::Relaxed);
            *self.cursor = Some(cursor);
        }
    }

    /// One output line to a journal line, or `None` (counted) when it gives none.
    fn convert(&mut self, json: &[u8]) -> Option<JournalLine> {
        let Ok(value) = serde_json::from_slice::<Value>(json) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(source = %self.name, "journalctl printed something that is not JSON: skipped");
            return None;
        };
        self.entries += 1;
        match entry_to_line(&value) {
            Ok(entry) => {
                if entry.binary_message {
                    self.stats.binary_messages.fetch_add(1, Ordering::Relaxed);
                }
                Some(entry.line)
            }
            Err(err) => {
                let counter = match err {
                    EntryError::NoMessage => &self.stats.missing_message,
                    _ => &self.stats.malformed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(source = %self.name, error = %err, "journal entry skipped");
                // Skipped, but seen: a restart goes on after it.
                if let Some(cursor) = value.get("__CURSOR").and_then(Value::as_str) {
                    *self.cursor = Some(cursor.to_string());
                }
                None
            }
        }
    }
}

/// Logs what journalctl says on stderr until it closes it; returns the last thing it said.
async fn log_stderr<R: AsyncBufRead + Unpin>(mut stderr: R, name: &str) -> String {
    let mut last = String::new();
    let mut buf = Vec::new();
    while let Ok(Some(_)) = read_capped_line(&mut stderr, &mut buf, 4096).await {
        let text = String::from_utf8_lossy(&buf).trim().to_string();
        if !text.is_empty() {
            tracing::warn!(source = %name, "journalctl: {text}");
            last = text;
        }
    }
    last
}

/// `lines::read_capped_line` for an async reader: the next line without `\n` in `buf`, at most
/// `max_bytes` (+1) of it kept; its full length, or `None` at the end.
async fn read_capped_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max_bytes: usize,
) -> io::Result<Option<usize>> {
    buf.clear();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(any.then_some(total));
        }
        any = true;
        let (used, done) =
            crate::sources::lines::take_line_piece(chunk, buf, &mut total, max_bytes);
        reader.consume(used);
        if done {
            return Ok(Some(total));
        }
    }
}

/// One entry of `journalctl --output=json` to the rsyslog line `TIMESTAMP HOST IDENT[PID]: MESSAGE`:
/// the time is `__REALTIME_TIMESTAMP` (when journald stored it) in UTC with microseconds, the host
/// `_HOSTNAME` (left out when missing), the identifier `SYSLOG_IDENTIFIER`, else `_COMM`, else
/// `unknown` (as `journalctl -o short` does), the pid `_PID`, else `SYSLOG_PID`, when it is a number.
/// Whitespace, `[`, `]` and `:` in the host and identifier become `_`, so they cannot shift the
/// fields the decoder finds. The message keeps its bytes; trailing line ends are removed and control
/// characters escaped as rsyslog writes them to its files (`#012` for a line feed), so a journal
/// line reads like the same message in `/var/log/syslog`.
pub fn entry_to_line(entry: &Value) -> Result<Entry, EntryError> {
    let fields = entry.as_object().ok_or(EntryError::NotAnObject)?;
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(field_bytes)
            .map(|(bytes, _)| bytes)
    };
    let cursor = fields
        .get("__CURSOR")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or(EntryError::NoCursor)?;
    let micros = text("__REALTIME_TIMESTAMP")
        .and_then(|t| std::str::from_utf8(&t).ok()?.parse::<i64>().ok())
        .and_then(|us| Timestamp::from_microsecond(us).ok())
        .ok_or(EntryError::NoTimestamp)?;
    let (message, binary_message) = fields
        .get("MESSAGE")
        .and_then(field_bytes)
        .ok_or(EntryError::NoMessage)?;

    let mut line = Vec::with_capacity(message.len() + 64);
    line.extend_from_slice(
        micros
            .strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
            .to_string()
            .as_bytes(),
    );
    line.push(b' ');
    if let Some(host) = text("_HOSTNAME").filter(|h| !h.is_empty()) {
        push_word(&mut line, &host);
        line.push(b' ');
    }
    match [text("SYSLOG_IDENTIFIER"), text("_COMM")]
        .into_iter()
        .flatten()
        .find(|ident| !ident.is_empty())
    {
        Some(ident) => push_word(&mut line, &ident),
        None => line.extend_from_slice(b"unknown"),
    }
    if let Some(pid) = [text("_PID"), text("SYSLOG_PID")]
        .into_iter()
        .flatten()
        .find(|pid| !pid.is_empty() && pid.iter().all(u8::is_ascii_digit))
    {
        line.push(b'[');
        line.extend_from_slice(&pid);
        line.push(b']');
    }
    line.extend_from_slice(b": ");
    let message = message.strip_suffix(b"\n").unwrap_or(&message);
    for &byte in message.strip_suffix(b"\r").unwrap_or(message) {
        if byte < 0x20 || byte == 0x7f {
            line.extend_from_slice(format!("#{byte:03o}").as_bytes());
        } else {
            line.push(byte);
        }
    }
    Ok(Entry {
        line: JournalLine {
            cursor: cursor.to_string(),
            bytes: line,
        },
        binary_message,
    })
}

/// A field as journalctl prints it in JSON: a string; an array of numbers for bytes that are not
/// printable UTF-8 (`true`: binary); an array of those when the entry has the field several times
/// (the first is taken).
fn field_bytes(value: &Value) -> Option<(std::borrow::Cow<'_, [u8]>, bool)> {
    match value {
        Value::String(text) => Some((std::borrow::Cow::Borrowed(text.as_bytes()), false)),
        Value::Array(items) if items.iter().all(Value::is_number) => {
            let bytes = items
                .iter()
                .map(|item| item.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()?;
            Some((std::borrow::Cow::Owned(bytes), true))
        }
        Value::Array(items) => items.first().and_then(field_bytes),
        _ => None,
    }
}

/// A host or identifier as one word the decoder splits where it should.
fn push_word(line: &mut Vec<u8>, word: &[u8]) {
    line.extend(word.iter().map(|&b| {
        if b.is_ascii_whitespace() || b.is_ascii_control() || matches!(b, b'[' | b']' | b':') {
            b'_'
        } else {
            b
        }
    }));
}

/// Whether this machine has a journal to read: `journalctl` on `PATH`, and journald running
/// (`/run/systemd/journal/socket`) or journal files in `/var/log/journal` or `/run/log/journal`.
/// The built-in defaults add a journald source when it is true.
pub fn journal_available() -> bool {
    let journalctl_found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(JOURNALCTL).is_file()));
    journalctl_found
        && (Path::new("/run/systemd/journal/socket").exists()
            || holds_journal_files(Path::new("/var/log/journal"))
            || holds_journal_files(Path::new("/run/log/journal")))
}

/// Whether `dir` or one of its folders (journald keeps one per machine id) holds a `*.journal` file.
pub fn holds_journal_files(dir: &Path) -> bool {
    let is_journal =
        |path: &Path| path.extension().is_some_and(|ext| ext == "journal") && path.is_file();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        is_journal(&path)
            || std::fs::read_dir(&path)
                .map(|inner| inner.flatten().any(|e| is_journal(&e.path())))
                .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::decode::{DecodeContext, Decoder, prepare_line};
    use crate::model::Format;

    /// The line an entry becomes, then what the syslog decoder reads from it: the line, then
    /// `host program pid ts`, then the message (`-` for what is missing).
    fn check(entry: Value, line: &str, decoded: &str, message: &str) {
        let made = entry_to_line(&entry).unwrap_or_else(|err| panic!("{err}: {entry}"));
        let prepared = prepare_line(&made.line.bytes, 64 * 1024);
        assert_eq!(prepared.text, line, "{entry}");
        // A zone and reference far from UTC and from the stamps: the line's own offset must win.
        let ctx = DecodeContext::new(
            jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap(),
            "2001-01-01T00:00:00Z".parse().unwrap(),
        );
        let mut decoder = Decoder::new(Format::Syslog, ctx);
        let event = decoder.decode(&prepared.text);
        assert!(!event.parse_error, "{line}");
        let field = |name| event.get(name).unwrap_or("-").to_string();
        let ts = event.ts.map_or("-".to_string(), |ts| ts.to_string());
        assert_eq!(
            format!(
                "{} {} {} {ts}",
                field("host"),
                field("program"),
                field("pid")
            ),
            decoded,
            "{line}"
        );
        assert_eq!(event.message(), message, "{line}");
        assert_eq!(made.line.cursor, entry["__CURSOR"].as_str().unwrap());
    }

    fn entry(fields: &[(&str, Value)]) -> Value {
        let mut entry = json!({
            "__CURSOR": "s=a;i=1;b=c;m=1;t=2;x=3",
            "__REALTIME_TIMESTAMP": "1796306400123456",
        });
        for (name, value) in fields {
            entry[name] = value.clone();
        }
        entry
    }

    #[test]
    fn entries_become_lines_the_syslog_decoder_reads_back() {
        check(
            entry(&[
                ("_HOSTNAME", json!("portal-01")),
                ("SYSLOG_IDENTIFIER", json!("sshd")),
                ("_PID", json!("811")),
                (
                    "MESSAGE",
                    json!("Failed password for root from 203.0.113.5 port 22 ssh2"),
                ),
            ]),
            "2026-12-03T14:00:00.123456+00:00 portal-01 sshd[811]: Failed password for root from 203.0.113.5 port 22 ssh2",
            "portal-01 sshd 811 2026-12-03T14:00:00.123456Z",
            "Failed password for root from 203.0.113.5 port 22 ssh2",
        );
        // No host, no pid, no identifier but the command name; a message that looks like a tag.
        check(
            entry(&[("_COMM", json!("cron")), ("MESSAGE", json!("x[1]: y"))]),
            "2026-12-03T14:00:00.123456+00:00 cron: x[1]: y",
            "- cron - 2026-12-03T14:00:00.123456Z",
            "x[1]: y",
        );
        // Neither identifier nor command, as journalctl -o short shows it.
        check(
            entry(&[("_HOSTNAME", json!("h")), ("MESSAGE", json!("hello"))]),
            "2026-12-03T14:00:00.123456+00:00 h unknown: hello",
            "h unknown - 2026-12-03T14:00:00.123456Z",
            "hello",
        );
        // Words that would shift the decoder's fields; a pid that is not a number; SYSLOG_PID.
        check(
            entry(&[
                ("_HOSTNAME", json!("bad host:")),
                ("SYSLOG_IDENTIFIER", json!("my app[x]: ")),
                ("_PID", json!("12 3")),
                ("SYSLOG_PID", json!("77")),
                ("MESSAGE", json!("m")),
            ]),
            "2026-12-03T14:00:00.123456+00:00 bad_host_ my_app_x___[77]: m",
            "bad_host_ my_app_x___ 77 2026-12-03T14:00:00.123456Z",
            "m",
        );
        // A line break, a tab and a CR inside, a trailing line break; a field given twice.
        check(
            entry(&[
                ("SYSLOG_IDENTIFIER", json!(["su", "ignored"])),
                ("MESSAGE", json!("one\ntwo\tthree\r\n")),
            ]),
            "2026-12-03T14:00:00.123456+00:00 su: one#012two#011three",
            "- su - 2026-12-03T14:00:00.123456Z",
            "one#012two#011three",
        );
    }

    #[test]
    fn a_binary_message_is_kept_and_flagged() {
        let made = entry_to_line(&entry(&[
            ("SYSLOG_IDENTIFIER", json!("bin")),
            ("MESSAGE", json!([97, 98, 255, 0, 99, 10])),
        ]))
        .unwrap();
        assert!(made.binary_message);
        assert_eq!(
            made.line.bytes,
            b"2026-12-03T14:00:00.123456+00:00 bin: ab\xff#000c".to_vec()
        );
        let prepared = prepare_line(&made.line.bytes, 1024);
        assert!(prepared.flags.invalid_utf8);
        assert!(prepared.text.ends_with("bin: ab\u{fffd}#000c"));
        let text = entry_to_line(&entry(&[("MESSAGE", json!("t"))])).unwrap();
        assert!(!text.binary_message);
        // Several binary values: the first.
        let several = entry_to_line(&entry(&[("MESSAGE", json!([[104, 105], "x"]))])).unwrap();
        assert!(several.binary_message);
        assert!(several.line.bytes.ends_with(b"unknown: hi"));
    }

    #[test]
    fn entries_without_what_a_line_needs_are_refused() {
        let cases = [
            (json!("text"), EntryError::NotAnObject),
            (
                json!({"__REALTIME_TIMESTAMP": "1", "MESSAGE": "m"}),
                EntryError::NoCursor,
            ),
            (
                json!({"__CURSOR": "c", "__REALTIME_TIMESTAMP": "soon", "MESSAGE": "m"}),
                EntryError::NoTimestamp,
            ),
            (
                json!({"__CURSOR": "c", "MESSAGE": "m"}),
                EntryError::NoTimestamp,
            ),
            (entry(&[]), EntryError::NoMessage),
            (entry(&[("MESSAGE", Value::Null)]), EntryError::NoMessage),
            (
                entry(&[("MESSAGE", json!([1, 300]))]),
                EntryError::NoMessage,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(entry_to_line(&value), Err(expected), "{value}");
        }
    }

    #[test]
    fn journalctl_gets_one_argument_per_value_and_where_to_start() {
        let source = JournaldSource {
            units: toml::Spanned::new(0..0, vec!["ssh.service".into(), "a b".into()]),
            identifiers: toml::Spanned::new(0..0, vec!["sudo".into()]),
            files: toml::Spanned::new(0..0, vec!["/x/*.journal".into()]),
            ..JournaldSource::default()
        };
        let fixed = [
            "--output=json",
            "--all",
            "--no-pager",
            "--follow",
            "--merge",
            "--output-fields=MESSAGE,_HOSTNAME,SYSLOG_IDENTIFIER,_COMM,_PID,SYSLOG_PID",
            "--file=/x/*.journal",
            "--unit=ssh.service",
            "--unit=a b",
            "--identifier=sudo",
        ];
        let tail = |start: Start| journalctl_args(&source, &start)[fixed.len()..].join(" ");
        assert_eq!(journalctl_args(&source, &Start::End)[..fixed.len()], fixed);
        assert_eq!(tail(Start::End), "--lines=0");
        assert_eq!(tail(Start::Beginning), "--no-tail");
        assert_eq!(
            tail(Start::AfterCursor("s=1;i=2".into())),
            "--after-cursor=s=1;i=2 --no-tail"
        );
        assert_eq!(
            tail(Start::Since("2026-12-03T14:00:00.5Z".parse().unwrap())),
            "--since=@1796306400.500000 --no-tail"
        );
        let dir = JournaldSource {
            directory: Some(toml::Spanned::new(0..0, "/srv/journal".into())),
            ..JournaldSource::default()
        };
        assert_eq!(
            journalctl_args(&dir, &Start::End)[6..],
            ["--directory=/srv/journal", "--lines=0"]
        );
    }

    #[tokio::test]
    async fn capped_lines_keep_their_length_and_the_last_line_counts() {
        let mut data = b"{}\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 5000));
        data.extend(b"\n\nlast");
        let mut reader = BufReader::with_capacity(64, &data[..]);
        let mut buf = Vec::new();
        let mut lens = Vec::new();
        while let Some(len) = read_capped_line(&mut reader, &mut buf, 100).await.unwrap() {
            lens.push((len, buf.len()));
        }
        assert_eq!(lens, [(2, 2), (5000, 101), (0, 0), (4, 4)]);
    }

    #[test]
    fn journal_files_are_found_in_a_folder_or_its_machine_folders() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!holds_journal_files(dir.path()));
        assert!(!holds_journal_files(&dir.path().join("missing")));
        let machine = dir.path().join("0123456789abcdef0123456789abcdef");
        std::fs::create_dir(&machine).unwrap();
        std::fs::write(machine.join("system.journal.txt"), "").unwrap();
        std::fs::create_dir(machine.join("folder.journal")).unwrap();
        assert!(!holds_journal_files(dir.path()));
        std::fs::write(machine.join("system.journal"), "").unwrap();
        assert!(holds_journal_files(dir.path()));
        assert!(holds_journal_files(&machine));
    }
}
