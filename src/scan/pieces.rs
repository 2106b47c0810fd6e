//! `scan --jobs N` on one big plain file: the file is cut into pieces on line boundaries, the
//! pieces are decoded and matched on N threads, and the merge takes each file's pieces strictly in
//! file order, so correlation sees the lines in the order one reader would have given it.
//!
//! What one reader carries from line to line, and how the pieces keep it:
//! - Line numbers: a piece numbers its lines from 1; the chain adds the lines of the pieces before.
//! - The time of a line without one (the previous line's): a piece's first untimed lines take
//!   `received`, flagged `ts_guessed`, and the chain gives them the time the piece before ended on.
//! - Decoders that keep state across lines (IIS's `#Fields:` header, the per-line guess of
//!   `Format::Auto`) are never cut: such files are read whole.
//!
//! Memory stays bounded: a thread takes a piece only while its file has fewer than `ahead` pieces
//! read but not yet merged, so a slow merge holds the threads back. That bound is per file, never
//! across files: the merge may wait on one file's next piece while another file's pieces are done,
//! and that next piece is always allowed, so the threads cannot all be waiting.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};

use jiff::Timestamp;

use super::{BATCH, InputError, ScanOptions, Stream, next_matched, read_error};
use crate::engine::{LineStats, Matched, Matcher, Source};
use crate::model::Format;

/// A file is cut into pieces of about this size: big enough that a piece's fixed cost (open,
/// seek, a channel) is nothing, small enough that two threads share even a 20 MB file.
pub const PIECE_BYTES: u64 = 8 << 20;

/// A byte range of a file: from a line's start to the next piece's start (`None`: to the end,
/// so the last piece also reads what was appended while scanning, as one reader would).
type Range = (u64, Option<u64>);

/// The pieces of `stream`'s file, when it is worth cutting and safe to: a plain file (not gzip,
/// evtx or stdin) of more than one piece, in a format whose lines decode on their own.
pub(super) fn plan(stream: &Stream, piece_bytes: u64) -> Option<Vec<Range>> {
    let path = stream.seekable.as_ref()?;
    if matches!(stream.source.format(), Format::Iis | Format::Auto) {
        return None;
    }
    let file = File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    if size <= piece_bytes {
        return None;
    }
    cut(&file, size, piece_bytes)
}

/// Ranges of about `piece_bytes` covering the file's first `size` bytes, each starting at a line.
fn cut(file: &File, size: u64, piece_bytes: u64) -> Option<Vec<Range>> {
    let mut starts = vec![0u64];
    let mut at = piece_bytes;
    while at < size {
        // The line `at` falls in belongs to the piece before; the next starts after its newline.
        match next_line_start(file, at - 1, size).ok()? {
            Some(start) if start < size => {
                starts.push(start);
                at = start + piece_bytes;
            }
            _ => break,
        }
    }
    let mut ranges: Vec<Range> = starts.windows(2).map(|w| (w[0], Some(w[1]))).collect();
    ranges.push((*starts.last().expect("starts with 0"), None));
    (ranges.len() > 1).then_some(ranges)
}

/// The offset just after the first newline at or after `from` (before `size`), if there is one.
fn next_line_start(file: &File, from: u64, size: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = from;
    while at < size {
        let want = buf.len().min((size - at) as usize);
        let got = file.read_at(&mut buf[..want], at)?;
        if got == 0 {
            return Ok(None);
        }
        if let Some(pos) = memchr::memchr(b'\n', &buf[..got]) {
            return Ok(Some(at + pos as u64 + 1));
        }
        at += got as u64;
    }
    Ok(None)
}

/// What a piece's thread sends: its matched lines in batches, then how the piece ended.
pub(super) enum Msg {
    Matched(Vec<Matched>),
    Done {
        stats: LineStats,
        /// The time a next untimed line would take (`Source::carried_time`).
        carried: Option<Timestamp>,
        error: Option<InputError>,
    },
}

/// A piece waiting for a thread.
pub(super) struct Piece {
    feed: usize,
    seq: usize,
    path: PathBuf,
    range: Range,
    source: Source,
    received: Timestamp,
    stats_index: usize,
    tx: Sender<Msg>,
}

/// The pieces of every cut file, in the order the threads should take them.
pub(super) struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    ahead: usize,
}

struct QueueState {
    waiting: VecDeque<Piece>,
    /// Per feed: how many of its pieces the merge has finished.
    merged: Vec<usize>,
}

impl Queue {
    pub(super) fn new(feeds: usize, ahead: usize) -> Queue {
        Queue {
            state: Mutex::new(QueueState {
                waiting: VecDeque::new(),
                merged: vec![0; feeds],
            }),
            ready: Condvar::new(),
            ahead: ahead.max(1),
        }
    }

    pub(super) fn has_work(&self) -> bool {
        !self.lock().waiting.is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // A panicking scan thread poisons nothing we cannot use: the counters stay consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, piece: Piece) {
        let mut state = self.lock();
        // Interleave the files by piece number, so files merged by time advance together.
        let at = state
            .waiting
            .iter()
            .position(|p| (p.seq, p.feed) > (piece.seq, piece.feed))
            .unwrap_or(state.waiting.len());
        state.waiting.insert(at, piece);
    }

    /// The first piece whose file is not too far ahead of the merge; `None` when none is left.
    fn take(&self) -> Option<Piece> {
        let mut state = self.lock();
        loop {
            if state.waiting.is_empty() {
                return None;
            }
            let ahead = self.ahead;
            let merged = &state.merged;
            if let Some(at) = state
                .waiting
                .iter()
                .position(|p| p.seq < merged[p.feed] + ahead)
            {
                return state.waiting.remove(at);
            }
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn merged_one(&self, feed: usize) {
        self.lock().merged[feed] += 1;
        self.ready.notify_all();
    }
}

/// A pool thread: reads pieces until none is left.
pub(super) fn work(queue: &Queue, matcher: &mut Matcher, opts: &ScanOptions) {
    while let Some(piece) = queue.take() {
        read_piece(piece, matcher, opts);
    }
}

fn read_piece(piece: Piece, matcher: &mut Matcher, opts: &ScanOptions) {
    let Piece {
        path,
        range: (start, end),
        source,
        received,
        stats_index,
        tx,
        ..
    } = piece;
    let reader = File::open(&path).and_then(|mut file| {
        file.seek(SeekFrom::Start(start))?;
        let len = end.map_or(u64::MAX, |end| end - start);
        Ok(BufReader::with_capacity(256 * 1024, file.take(len)))
    });
    let mut stream = match reader {
        Ok(reader) => Stream {
            reader: Box::new(reader),
            source,
            seekable: None,
            stats_index,
            ahead: Default::default(),
            line: Vec::new(),
            received,
            error: None,
        },
        Err(err) => {
            let _ = tx.send(Msg::Done {
                stats: source.stats,
                carried: None,
                error: Some(read_error(&err)),
            });
            return;
        }
    };
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            match next_matched(&mut stream, matcher, opts) {
                Some(matched) => batch.push(matched),
                None => break,
            }
        }
        let last = batch.len() < BATCH;
        // A closed receiver means the scan is over: nothing to keep.
        if !batch.is_empty() && tx.send(Msg::Matched(batch)).is_err() {
            return;
        }
        if last {
            break;
        }
    }
    let _ = tx.send(Msg::Done {
        stats: stream.source.stats,
        carried: stream.source.carried_time(),
        error: stream.error,
    });
}

/// The merge's side of one cut file: its pieces' lines, in file order, numbered and timed as one
/// reader would have.
pub(super) struct Chain {
    feed: usize,
    queue: Arc<Queue>,
    stats_index: usize,
    pieces: VecDeque<Receiver<Msg>>,
    pending: VecDeque<Matched>,
    lines_before: u64,
    carried: Option<Timestamp>,
    stats: LineStats,
    error: Option<InputError>,
    count: usize,
}

impl Chain {
    /// Queues `ranges` of `stream`'s file for the threads, each with a source from `make_source`.
    pub(super) fn new(
        feed: usize,
        queue: &Arc<Queue>,
        stream: &Stream,
        ranges: Vec<Range>,
        make_source: &mut dyn FnMut() -> Source,
    ) -> Chain {
        let path = stream
            .seekable
            .clone()
            .expect("only seekable files are cut");
        let mut pieces = VecDeque::new();
        for (seq, range) in ranges.into_iter().enumerate() {
            let (tx, rx) = std::sync::mpsc::channel();
            pieces.push_back(rx);
            queue.push(Piece {
                feed,
                seq,
                path: path.clone(),
                range,
                source: make_source(),
                received: stream.received,
                stats_index: stream.stats_index,
                tx,
            });
        }
        let count = pieces.len();
        Chain {
            count,
            feed,
            queue: queue.clone(),
            stats_index: stream.stats_index,
            pieces,
            pending: VecDeque::new(),
            lines_before: 0,
            carried: None,
            stats: LineStats::default(),
            error: None,
        }
    }

    pub(super) fn next(&mut self) -> Option<Matched> {
        loop {
            if let Some(mut matched) = self.pending.pop_front() {
                matched.line_no += self.lines_before;
                if matched.ts_guessed {
                    if let Some(ts) = self.carried {
                        matched.retime(ts);
                        matched.ts_guessed = false;
                    }
                }
                return Some(matched);
            }
            let piece = self.pieces.front()?;
            match piece.recv() {
                Ok(Msg::Matched(batch)) => self.pending.extend(batch),
                Ok(Msg::Done {
                    stats,
                    carried,
                    error,
                }) => {
                    self.lines_before += stats.lines;
                    self.stats.add(&stats);
                    self.carried = carried.or(self.carried);
                    if self.error.is_none() {
                        self.error = error;
                    }
                    self.end_piece();
                }
                // Its thread panicked; the scope's join reports it.
                Err(_) => self.end_piece(),
            }
        }
    }

    fn end_piece(&mut self) {
        self.pieces.pop_front();
        self.queue.merged_one(self.feed);
    }

    /// The file's line counts, first error and number of pieces, once every piece is merged.
    pub(super) fn finish(self) -> (usize, LineStats, Option<InputError>, usize) {
        (self.stats_index, self.stats, self.error, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_start_at_lines_and_cover_the_file() {
        let mut text = String::new();
        for i in 0..200 {
            // A few lines longer than a piece: a piece ends only after a whole line.
            let len = if i % 37 == 0 { 300 } else { i % 23 };
            text.push_str(&"x".repeat(len));
            text.push('\n');
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, &text).unwrap();
        let file = File::open(&path).unwrap();
        let ranges = cut(&file, text.len() as u64, 100).unwrap();
        assert!(ranges.len() > 10, "{ranges:?}");
        let mut at = 0;
        for (i, &(start, end)) in ranges.iter().enumerate() {
            assert_eq!(start, at, "contiguous");
            assert!(start == 0 || text.as_bytes()[start as usize - 1] == b'\n');
            match end {
                Some(end) => {
                    assert!(end > start);
                    at = end;
                }
                None => assert_eq!(i, ranges.len() - 1, "only the last is open-ended"),
            }
        }
    }
}
