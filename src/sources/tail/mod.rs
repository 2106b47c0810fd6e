//! The lossless file tailer: follows the files named by one `[[source.file]]` glob set through
//! rotation (rename-and-create, copytruncate), deletion, recreation and symlink retargeting, and
//! resumes from checkpoints. Synchronous on purpose: tests drive `Tailer::poll` directly, and the
//! async wake-up loop (`watch::run`) only decides *when* to poll.
//!
//! A file is known by its identity, `FileKey` = (device, inode) of the file a name resolves to
//! (symlinks followed), checked against a fingerprint of its first bytes (see `fingerprint`), never
//! by its name: a rotated `auth.log.1` is the same file we were reading as `auth.log`.

mod fingerprint;
pub mod watch;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use crate::config::{FileSource, StartAt};
use crate::model::Checkpoint;
use crate::sources::lines::read_capped_line;

pub use fingerprint::{FINGERPRINT_MAX, Fingerprint, fingerprint_file};

/// At most this much of one file is read in one poll, so one huge backlog cannot starve the other
/// files of the set; `PollStats::more` tells the caller to poll again at once.
pub const MAX_BYTES_PER_FILE_POLL: u64 = 16 * 1024 * 1024;

/// When `start_at = "end"` finds a file ending in an unfinished line, the tailer looks this far
/// back for the last newline so that the unfinished line is read whole once completed.
const END_LOOKBACK: u64 = 64 * 1024;

/// The identity of a file: (device, inode) of what a matched name resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
}

impl FileKey {
    pub fn of(meta: &Metadata) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// The key under which the store keeps this file's checkpoint (`file:DEV:INO`).
    pub fn store_key(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file:{}:{}", self.dev, self.ino)
    }
}

impl FromStr for FileKey {
    type Err = ();

    /// Parses a store key written by `store_key`; other sources' keys give `Err`.
    fn from_str(text: &str) -> Result<FileKey, ()> {
        let rest = text.strip_prefix("file:").ok_or(())?;
        let (dev, ino) = rest.split_once(':').ok_or(())?;
        Ok(FileKey {
            dev: dev.parse().map_err(|_| ())?,
            ino: ino.parse().map_err(|_| ())?,
        })
    }
}

/// One complete line read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailedLine {
    /// The name the file had when it was last found by the globs (a rotated file keeps its old name);
    /// shared with the file's other lines rather than copied into each.
    pub source: Arc<Path>,
    pub file_key: FileKey,
    /// The file's fingerprint when the line was read; with `offset_after` it is the checkpoint.
    pub fingerprint: u64,
    /// The line without its `\n`, cut to the cap plus one byte (see `read_capped_line`).
    pub bytes: Vec<u8>,
    /// The line's full length, which may exceed `bytes.len()`.
    pub len: usize,
    /// The byte offset just after this line: where to resume once this line is durable.
    pub offset_after: u64,
}

impl TailedLine {
    /// What to save, once this line's consequences are durable, to resume after it.
    pub fn checkpoint(&self) -> (FileKey, Checkpoint) {
        (
            self.file_key,
            Checkpoint {
                fingerprint: self.fingerprint,
                offset: self.offset_after,
            },
        )
    }
}

/// What one poll did; counters for metrics and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollStats {
    pub lines: u64,
    pub bytes: u64,
    /// Files currently open (named by a glob, or rotated away and still being drained).
    pub files: usize,
    /// Files found for the first time in this poll.
    pub opened: u64,
    /// Files closed after being rotated away, deleted or retargeted and read to their end.
    pub closed: u64,
    /// Truncations (copytruncate) and replacements at the same inode detected: restarted at 0.
    pub truncated: u64,
    /// Files resumed from a checkpoint.
    pub resumed: u64,
    /// Per-file errors (permission denied, vanished between stat and open); the file is retried
    /// at the next poll.
    pub errors: u64,
    /// Some file hit `MAX_BYTES_PER_FILE_POLL`: poll again without waiting.
    pub more: bool,
}

/// The tailer's settings, from a `[[source.file]]`.
#[derive(Debug, Clone)]
pub struct TailerConfig {
    pub paths: Vec<String>,
    pub start_at: StartAt,
    pub max_line_bytes: usize,
}

impl TailerConfig {
    pub fn from_source(source: &FileSource, max_line_bytes: usize) -> TailerConfig {
        TailerConfig {
            paths: source.paths.clone(),
            start_at: source.start_at,
            max_line_bytes,
        }
    }
}

struct Tracked {
    path: Arc<Path>,
    file: File,
    /// Offset after the last complete line handed out.
    offset: u64,
    fingerprint: Option<Fingerprint>,
    /// No glob names it any more (rotated, deleted, symlink retargeted): drained, then closed.
    gone: bool,
}

/// Tails the files matched by one set of globs. See the module doc.
pub struct Tailer {
    config: TailerConfig,
    patterns: Vec<glob::Pattern>,
    files: HashMap<FileKey, Tracked>,
    /// Checkpoints not yet matched to a file; consulted for files first seen, emptied after the
    /// first poll (what is left is looked for among the rotated files beside the matched ones).
    checkpoints: HashMap<FileKey, Checkpoint>,
    first_poll: bool,
    buf: Vec<u8>,
    last_error: Option<(PathBuf, io::Error)>,
}

impl Tailer {
    /// A tailer over `config.paths`, resuming each file whose identity and fingerprint match one of
    /// `checkpoints`. Fails only on a malformed glob.
    pub fn new(
        config: TailerConfig,
        checkpoints: HashMap<FileKey, Checkpoint>,
    ) -> io::Result<Tailer> {
        let patterns = config
            .paths
            .iter()
            .map(|p| {
                glob::Pattern::new(p).map_err(|err| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("glob {p:?}: {err}"))
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Tailer {
            config,
            patterns,
            files: HashMap::new(),
            checkpoints,
            first_poll: true,
            buf: Vec::new(),
            last_error: None,
        })
    }

    pub fn config(&self) -> &TailerConfig {
        &self.config
    }

    /// The directories whose changes can concern this tailer: the literal part of each glob, the
    /// folders of the files found and of their symlink targets. The watcher watches these.
    pub fn watch_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.config.paths.iter().map(|p| literal_dir(p)).collect();
        for tracked in self.files.values().filter(|t| !t.gone) {
            if let Some(parent) = tracked.path.parent() {
                dirs.push(parent.to_path_buf());
            }
            if let Ok(real) = fs::canonicalize(&tracked.path)
                && let Some(parent) = real.parent()
            {
                dirs.push(parent.to_path_buf());
            }
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Where every open file stands now, fingerprinted files only. A daemon saves these after its
    /// first poll, so that a restart does not apply `start_at = "end"` again to a file that had no
    /// new line before the restart.
    pub fn positions(&self) -> Vec<(FileKey, Checkpoint)> {
        let mut out: Vec<_> = self
            .files
            .iter()
            .filter_map(|(key, t)| {
                t.fingerprint.map(|fp| {
                    (
                        *key,
                        Checkpoint {
                            fingerprint: fp.hash,
                            offset: t.offset,
                        },
                    )
                })
            })
            .collect();
        out.sort_by_key(|(key, _)| *key);
        out
    }

    /// The last per-file error, for logs.
    pub fn last_error(&self) -> Option<&(PathBuf, io::Error)> {
        self.last_error.as_ref()
    }

    /// Finds the files, reads every new complete line and hands each to `sink` in file order.
    /// Files that left the globs are read first (they hold the older lines), then the named ones
    /// in path order. Per-file errors are counted in the stats and retried at the next poll.
    pub fn poll(&mut self, sink: &mut impl FnMut(TailedLine)) -> io::Result<PollStats> {
        let mut stats = PollStats::default();
        let named = self.expand(&mut stats);
        let first_poll = std::mem::replace(&mut self.first_poll, false);

        let named_keys: HashSet<FileKey> = named.iter().map(|(_, key, _)| *key).collect();
        for (key, tracked) in self.files.iter_mut() {
            if !named_keys.contains(key) {
                tracked.gone = true;
            }
        }
        let mut fresh = Vec::new();
        for (path, key, _) in &named {
            if let Some(tracked) = self.files.get_mut(key) {
                tracked.gone = false;
                if *tracked.path != **path {
                    tracked.path = Arc::from(path.as_path());
                }
                continue;
            }
            match self.open(path, *key, &mut stats) {
                Ok(Some((tracked, resumed))) => {
                    if !resumed {
                        fresh.push(*key);
                    }
                    self.files.insert(*key, tracked);
                }
                Ok(None) => {}
                Err(err) => self.error(path, err, &mut stats),
            }
        }
        if first_poll {
            self.adopt_rotated(&named, &mut stats);
            self.checkpoints.clear();
            // `start_at = "end"` is for a source seen for the first time. A tailer that resumed
            // any file is catching up after downtime: files it does not know appeared meanwhile
            // and are new data, read from the beginning like any file found later.
            if self.config.start_at == StartAt::End && stats.resumed == 0 {
                for key in fresh {
                    let tracked = self.files.get_mut(&key).expect("just opened");
                    let size = tracked.file.metadata()?.len();
                    tracked.offset = end_offset(&tracked.file, size)?;
                }
            }
        }

        // Gone files first: their lines precede the ones in the files that replaced them.
        let mut order: Vec<(bool, Arc<Path>, FileKey)> = self
            .files
            .iter()
            .map(|(key, t)| (!t.gone, t.path.clone(), *key))
            .collect();
        order.sort();
        for (_, path, key) in order {
            let result = {
                let tracked = self.files.get_mut(&key).expect("listed above");
                observe(&tracked.file).and_then(|observed| {
                    read_new(
                        tracked,
                        observed,
                        key,
                        self.config.max_line_bytes,
                        &mut self.buf,
                        sink,
                        &mut stats,
                    )
                })
            };
            match result {
                Ok(read) => {
                    let tracked = &self.files[&key];
                    if tracked.gone && read == 0 {
                        // Idle since it left the globs: whatever its writer had to say is said.
                        let mut tracked = self.files.remove(&key).expect("present");
                        flush_remainder(&mut tracked, key, self.config.max_line_bytes, sink)?;
                        stats.closed += 1;
                    }
                }
                Err(err) => {
                    // A gone file that cannot be read any more is dropped; a named one is retried.
                    if self.files[&key].gone {
                        self.files.remove(&key);
                        stats.closed += 1;
                    }
                    self.error(&path, err, &mut stats);
                }
            }
        }
        stats.files = self.files.len();
        Ok(stats)
    }

    fn error(&mut self, path: &Path, err: io::Error, stats: &mut PollStats) {
        stats.errors += 1;
        self.last_error = Some((path.to_path_buf(), err));
    }

    /// The regular files the globs name now, by identity (symlinks followed), first name wins.
    fn expand(&mut self, stats: &mut PollStats) -> Vec<(PathBuf, FileKey, Metadata)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for pattern in self.patterns.clone() {
            let Ok(paths) = glob::glob_with(pattern.as_str(), GLOB_OPTIONS) else {
                continue; // validated in `new`
            };
            for entry in paths {
                let path = match entry {
                    Ok(path) => path,
                    Err(err) => {
                        let path = err.path().to_path_buf();
                        self.error(&path, err.into(), stats);
                        continue;
                    }
                };
                match fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => {
                        let key = FileKey::of(&meta);
                        if seen.insert(key) {
                            out.push((path, key, meta));
                        }
                    }
                    Ok(_) => {}
                    // Vanished between listing and stat, or a dangling symlink: not there.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => self.error(&path, err, stats),
                }
            }
        }
        out
    }

    /// Opens a file seen for the first time: at its checkpoint if one matches (then `true`), else
    /// at 0 (`poll` moves it to the end for `start_at = "end"` on a fresh source).
    fn open(
        &mut self,
        path: &Path,
        key: FileKey,
        stats: &mut PollStats,
    ) -> io::Result<Option<(Tracked, bool)>> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        // The name may have been switched between the stat and the open: trust the open file.
        let key_now = FileKey::of(&meta);
        if key_now != key {
            return Ok(None); // found again, under its true identity, at the next poll
        }
        let fingerprint = fingerprint_file(&file)?;
        let size = meta.len();
        let resumed = self.checkpoints.remove(&key).and_then(|cp| {
            (fingerprint.map(|f| f.hash) == Some(cp.fingerprint) && cp.offset <= size)
                .then_some(cp.offset)
        });
        if resumed.is_some() {
            stats.resumed += 1;
        }
        stats.opened += 1;
        Ok(Some((
            Tracked {
                path: Arc::from(path),
                file,
                // New files are new data: read from the beginning.
                offset: resumed.unwrap_or(0),
                fingerprint,
                gone: false,
            },
            resumed.is_some(),
        )))
    }

    /// After downtime, a checkpointed file may have been rotated away (`auth.log` → `auth.log.1`)
    /// with unread lines. Looks for it by identity beside the matched files and drains it. Only a
    /// name that is one of this source's names plus a rotation suffix qualifies: the checkpoints of
    /// every source are offered to every tailer, and another source's file in the same folder
    /// (`syslog` beside `auth.log`) is that source's to read, not a rotated file of this one.
    fn adopt_rotated(&mut self, named: &[(PathBuf, FileKey, Metadata)], stats: &mut PollStats) {
        if self.checkpoints.is_empty() {
            return;
        }
        let mut dirs: Vec<PathBuf> = named
            .iter()
            .filter_map(|(path, _, _)| path.parent().map(Path::to_path_buf))
            .chain(self.config.paths.iter().map(|p| literal_dir(p)))
            .collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = fs::metadata(&path) else {
                    continue;
                };
                let key = FileKey::of(&meta);
                if !meta.is_file() || self.files.contains_key(&key) {
                    continue;
                }
                if !self.checkpoints.contains_key(&key) || !self.is_rotated_name(&path) {
                    continue;
                }
                let Some(cp) = self.checkpoints.get(&key).copied() else {
                    continue;
                };
                let Ok(file) = File::open(&path) else {
                    continue;
                };
                let Ok(Some(fp)) = fingerprint_file(&file) else {
                    continue;
                };
                if fp.hash != cp.fingerprint || cp.offset > meta.len() {
                    continue;
                }
                self.checkpoints.remove(&key);
                stats.resumed += 1;
                self.files.insert(
                    key,
                    Tracked {
                        path: Arc::from(path),
                        file,
                        offset: cp.offset,
                        fingerprint: Some(fp),
                        gone: true,
                    },
                );
            }
        }
    }
}

impl Tailer {
    /// Whether `path` is a rotated name of one of this source's files: a configured pattern's
    /// file name matches a prefix of it that a rotation suffix follows (`auth.log.1`,
    /// `auth.log.2.gz`, `auth.log-20261203`, `access.log_old`).
    fn is_rotated_name(&self, path: &Path) -> bool {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return false;
        };
        self.config.paths.iter().any(|pattern| {
            let file_pattern = Path::new(pattern)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Ok(glob) = glob::Pattern::new(&file_pattern) else {
                return false;
            };
            name.char_indices()
                .filter(|(_, c)| matches!(c, '.' | '-' | '_'))
                .any(|(at, _)| at > 0 && glob.matches_with(&name[..at], GLOB_OPTIONS))
        })
    }
}

/// How the tailer matches its globs: `*` never crosses a `/`, case matters, dotfiles match.
const GLOB_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// The regular files (symlinks followed) that `pattern` names now, as a tailer would find them;
/// nothing for a malformed pattern. For `config check`, which warns about sources that read nothing.
pub fn glob_files(pattern: &str) -> Vec<PathBuf> {
    let Ok(paths) = glob::glob_with(pattern, GLOB_OPTIONS) else {
        return Vec::new();
    };
    paths
        .filter_map(Result::ok)
        .filter(|path| fs::metadata(path).is_ok_and(|meta| meta.is_file()))
        .collect()
}

/// The directory part of a glob before its first wildcard component.
fn literal_dir(pattern: &str) -> PathBuf {
    let path = Path::new(pattern);
    let mut dir = PathBuf::new();
    let components: Vec<_> = path.components().collect();
    for (i, component) in components.iter().enumerate() {
        let text = component.as_os_str().to_string_lossy();
        if i + 1 == components.len() || text.contains(['*', '?', '[']) {
            break;
        }
        dir.push(component);
    }
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}

/// Where `start_at = "end"` starts: after the last newline, so an unfinished last line is read
/// whole once its writer finishes it.
fn end_offset(file: &File, size: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let from = size.saturating_sub(END_LOOKBACK);
    let mut tail = vec![0u8; (size - from) as usize];
    let mut got = 0;
    while got < tail.len() {
        match file.read_at(&mut tail[got..], from + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    tail.truncate(got);
    Ok(match memchr::memrchr(b'\n', &tail) {
        Some(pos) => from + pos as u64 + 1,
        None if from == 0 => 0,
        None => size,
    })
}

/// Counts the bytes consumed through a `BufRead`, so a line's end offset is known exactly and a
/// line cut short by the end of the file can be told from one ended by `\n`.
struct Counting<R> {
    inner: R,
    consumed: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amount: usize) {
        self.consumed += amount as u64;
        self.inner.consume(amount);
    }
}

/// What a poll saw of a file before reading it: its size, then its fingerprint, in that order.
///
/// Why the order and the bound: a poll reads no further than `size`, so every complete line it
/// reads was already there when the fingerprint was taken, and the fingerprint covers the file's
/// first line. Reading past the look could hand out a young file's first line, finished by its
/// writer a moment after the look, with no fingerprint; its checkpoint would then match no file
/// after a crash and the line would be read a second time.
#[derive(Debug, Clone, Copy)]
struct Observed {
    size: u64,
    fingerprint: Option<Fingerprint>,
}

fn observe(file: &File) -> io::Result<Observed> {
    let size = file.metadata()?.len();
    let fingerprint = fingerprint_file(file)?;
    Ok(Observed { size, fingerprint })
}

/// Detects truncation or replacement from what `observe` saw, then reads the complete lines after
/// `tracked.offset` up to the size it saw. Returns the number of bytes consumed.
fn read_new(
    tracked: &mut Tracked,
    Observed { size, fingerprint }: Observed,
    key: FileKey,
    max_line_bytes: usize,
    buf: &mut Vec<u8>,
    sink: &mut impl FnMut(TailedLine),
    stats: &mut PollStats,
) -> io::Result<u64> {
    let replaced = match (tracked.fingerprint, fingerprint) {
        (Some(old), Some(new)) => old != new,
        // Had a first line and lost it: truncated below it.
        (Some(_), None) => true,
        (None, _) => false,
    };
    if size < tracked.offset || replaced {
        // copytruncate, `> file`, or a new file at the same inode: everything in it is new.
        tracked.offset = 0;
        stats.truncated += 1;
    }
    tracked.fingerprint = fingerprint;
    if size == tracked.offset {
        return Ok(0);
    }
    tracked.file.seek(SeekFrom::Start(tracked.offset))?;
    let limited = (&tracked.file).take((size - tracked.offset).min(MAX_BYTES_PER_FILE_POLL));
    let mut reader = Counting {
        inner: BufReader::with_capacity(64 * 1024, limited),
        consumed: 0,
    };
    let start = tracked.offset;
    loop {
        let before = reader.consumed;
        let Some(len) = read_capped_line(&mut reader, buf, max_line_bytes)? else {
            break;
        };
        let used = reader.consumed - before;
        if used == len as u64 {
            // No newline yet: the writer has not finished this line. Read it again next time.
            if reader.consumed >= MAX_BYTES_PER_FILE_POLL {
                stats.more = true;
            }
            break;
        }
        tracked.offset = start + reader.consumed;
        stats.lines += 1;
        stats.bytes += used;
        sink(TailedLine {
            source: tracked.path.clone(),
            file_key: key,
            // Complete lines have a fingerprint: the first newline is at or before this one.
            fingerprint: tracked.fingerprint.map_or(0, |f| f.hash),
            bytes: buf.clone(),
            len,
            offset_after: tracked.offset,
        });
    }
    Ok(tracked.offset - start)
}

/// A file being closed after it left the globs: its unfinished last line will never be finished,
/// so it is handed out as it is.
fn flush_remainder(
    tracked: &mut Tracked,
    key: FileKey,
    max_line_bytes: usize,
    sink: &mut impl FnMut(TailedLine),
) -> io::Result<()> {
    let size = tracked.file.metadata()?.len();
    if size <= tracked.offset {
        return Ok(());
    }
    tracked.file.seek(SeekFrom::Start(tracked.offset))?;
    let mut reader = BufReader::new(&tracked.file);
    let mut buf = Vec::new();
    if let Some(len) = read_capped_line(&mut reader, &mut buf, max_line_bytes)? {
        tracked.offset += len as u64;
        sink(TailedLine {
            source: tracked.path.clone(),
            file_key: key,
            fingerprint: tracked.fingerprint.map_or(0, |f| f.hash),
            bytes: buf,
            len,
            offset_after: tracked.offset,
        });
    }
    Ok(())
}
