//! `socwatch scan`: one pass over log files (plain, gzip, stdin) through the same engine as the
//! daemon (`engine::Engine`). Several files are merged by event time, so `auth.log.2.gz auth.log.1
//! auth.log` gives the incidents that watching those days live would have given.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::cases::Case;
use crate::correlate::{Change, Limits, Stats};
use crate::decode::{detect_format, prepare_line};
use crate::engine::{Engine, LineStats, Matched, Matcher, Sink, Source, SourceSpec};
use crate::model::{Format, Incident, Logsource};
use crate::rules::RuleSet;
use crate::sources::evtx::{EvtxLines, MAGIC as EVTX_MAGIC};
use crate::sources::lines::read_capped_line;

mod pieces;

pub use pieces::PIECE_BYTES;

/// Lines read ahead to detect a file's format.
const DETECT_LINES: usize = 20;

#[derive(Debug, Clone)]
pub enum Input {
    Stdin,
    Path(PathBuf),
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".into(),
            Input::Path(path) => path.display().to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub format: Format,
    /// Overrides of the logsource the decoder gives (`--logsource product=windows`).
    pub logsource: Logsource,
    pub zone: TimeZone,
    pub max_line_bytes: usize,
    /// Host for events that do not name one.
    pub host: String,
    pub unit: String,
    /// "Now" for stdin's year-less timestamps.
    pub now: Timestamp,
    pub limits: Limits,
    /// `[cases] window`: how far apart in event time incidents on one entity still share a case.
    pub case_window: std::time::Duration,
    /// Threads that decode and match (1: all on the calling thread): several inputs at once, and
    /// a big plain file in pieces (`pieces`). Correlation runs on one thread in event-time order
    /// whatever this is, so the incidents are the same for any value.
    pub jobs: usize,
    /// About how many bytes of a plain file one thread reads at a time (`pieces::PIECE_BYTES`;
    /// tests make it small to cut small files into many pieces).
    pub piece_bytes: u64,
    /// Bytes read so far over all inputs, for a progress display (updated as the inputs are read).
    pub progress: Option<Arc<AtomicU64>>,
    /// Keep every rule hit (`scan --matches`), before thresholds.
    pub keep_matches: bool,
}

/// One rule hit, as `scan --matches` lists it: where, when, which rule, what it extracted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MatchRecord {
    pub source: String,
    pub line: u64,
    #[serde(with = "crate::model::rfc3339")]
    pub ts: Timestamp,
    pub rule_id: String,
    pub fields: std::collections::BTreeMap<String, String>,
    pub text: String,
}

/// What was read from one input, and what was wrong with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputStats {
    pub source: String,
    pub format: Option<Format>,
    /// Lines, bytes, what was wrong with them and rule matches, as the engine counted them.
    pub counts: LineStats,
    /// Why reading stopped early (cannot open, truncated gzip, IO error).
    pub error: Option<InputError>,
    /// How many pieces it was read in at once (`--jobs`); 0 or 1: read whole.
    pub pieces: usize,
}

/// Why an input could not be read to its end. The CLI words it in the operator's language;
/// the OS error text is kept as the OS gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    Open(String),
    Read(String),
    GzipTruncated,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text(crate::model::Lang::En))
    }
}

impl InputError {
    pub fn text(&self, lang: crate::model::Lang) -> String {
        match self {
            InputError::Open(error) => crate::tr!(lang, InputCannotOpen, error = error),
            InputError::Read(error) => crate::tr!(lang, InputReadError, error = error),
            InputError::GzipTruncated => crate::tr!(lang, InputGzipTruncated),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Oldest first.
    pub incidents: Vec<Incident>,
    /// The cases the incidents form, oldest first.
    pub cases: Vec<Case>,
    pub inputs: Vec<InputStats>,
    pub matches: u64,
    pub correlation: Stats,
    /// Every rule hit in the order correlation saw them, when `keep_matches` was asked.
    pub hits: Vec<MatchRecord>,
}

impl ScanReport {
    pub fn lines(&self) -> u64 {
        self.inputs.iter().map(|i| i.counts.lines).sum()
    }

    pub fn failed_inputs(&self) -> usize {
        self.inputs
            .iter()
            .filter(|i| i.error.is_some() && i.counts.lines == 0)
            .count()
    }
}

/// One open input, positioned on its next line.
struct Stream {
    reader: Box<dyn BufRead + Send>,
    source: Source,
    /// The file's path, when it is a plain file that can be read from any offset (in pieces).
    seekable: Option<PathBuf>,
    stats_index: usize,
    /// Lines read ahead for format detection, with their full lengths.
    ahead: std::collections::VecDeque<(Vec<u8>, usize)>,
    line: Vec<u8>,
    /// For lines before the first that has a time: the file's mtime, else "now".
    received: Timestamp,
    /// Why reading stopped early.
    error: Option<InputError>,
}

/// An input opened for reading lines (on its own thread: `Send`).
struct Opened {
    reader: Box<dyn BufRead + Send>,
    mtime: Option<Timestamp>,
    /// A Windows event log file, read as one JSON line per record.
    evtx: bool,
    /// A plain file on disk (not gzip, evtx or stdin), which can be read from any offset.
    seekable: bool,
}

fn open(input: &Input) -> io::Result<Opened> {
    const BUFFER: usize = 256 * 1024;
    let (raw, mtime): (Box<dyn Read + Send>, Option<Timestamp>) = match input {
        Input::Stdin => (Box::new(io::stdin()), None),
        Input::Path(path) => {
            let mut file = File::open(path)?;
            let mtime = file
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| Timestamp::try_from(t).ok());
            let mut head = [0u8; 8];
            let n = read_head(&mut file, &mut head)?;
            file.seek(SeekFrom::Start(0))?;
            if head[..n] == *EVTX_MAGIC {
                let lines = EvtxLines::new(file)?;
                return Ok(Opened {
                    reader: Box::new(BufReader::with_capacity(BUFFER, lines)),
                    mtime,
                    evtx: true,
                    seekable: false,
                });
            }
            (Box::new(file), mtime)
        }
    };
    let mut reader = BufReader::with_capacity(BUFFER, raw);
    let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            BUFFER,
            MultiGzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    };
    if reader.fill_buf()?.starts_with(EVTX_MAGIC) {
        // Gzipped or piped: the evtx reader seeks, so the file is read into memory first.
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        let lines = EvtxLines::new(io::Cursor::new(bytes))?;
        return Ok(Opened {
            reader: Box::new(BufReader::with_capacity(BUFFER, lines)),
            mtime,
            evtx: true,
            seekable: false,
        });
    }
    Ok(Opened {
        reader,
        mtime,
        evtx: false,
        seekable: !gzip && matches!(input, Input::Path(_)),
    })
}

/// Reads up to `head.len()` bytes (fewer only at the end of the file).
fn read_head(file: &mut File, head: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            read => n += read,
        }
    }
    Ok(n)
}

/// What `scan` knows of an input's source: its name is its clock (lines of one file share one).
fn spec_of(input: &Input, opts: &ScanOptions) -> SourceSpec {
    SourceSpec {
        name: input.name(),
        clock: input.name(),
        format: Format::Plain,
        logsource: opts.logsource.clone(),
        zone: opts.zone.clone(),
        system: String::new(),
        level: 0,
        host: opts.host.clone(),
    }
}

/// Collects changes into the incident list, in the order the incidents opened. The cases are
/// taken from the engine once at the end (`Engine::into_cases`), not copied on every change.
#[derive(Default)]
struct Collect {
    incidents: Vec<Incident>,
    slot_of: crate::correlate::Map<String, usize>,
}

impl Sink for Collect {
    fn change(&mut self, change: Change) {
        match &change {
            Change::Opened(incident) => {
                self.slot_of
                    .insert(incident.id.clone(), self.incidents.len());
                self.incidents.push((**incident).clone());
            }
            Change::Updated { id, .. } => {
                if let Some(&at) = self.slot_of.get(id) {
                    self.incidents[at].apply(&change);
                }
            }
        }
    }

    fn case(&mut self, _case: &Case) {}
}

/// Scans the inputs with the rules. Inputs that cannot be read are reported in `inputs`, never fatal.
///
/// Each input is decoded and matched on its own (on `threads` threads); what matched is merged by
/// event time, ties by input order, and correlated on this thread, so the incidents are exactly
/// those of one engine reading the lines in that order, for any number of threads.
pub fn scan(inputs: &[Input], rules: &Arc<RuleSet>, opts: &ScanOptions) -> ScanReport {
    let mut report = ScanReport::default();
    let mut engine = Engine::new(rules.clone(), opts.limits, &opts.unit, opts.max_line_bytes)
        .with_case_window(opts.case_window)
        .keeping_cases();
    let mut streams = Vec::new();
    for input in inputs {
        let mut stats = InputStats {
            source: input.name(),
            ..InputStats::default()
        };
        match open(input) {
            Ok(Opened {
                reader,
                mtime,
                evtx,
                seekable,
            }) => {
                let mut stream = Stream {
                    reader,
                    source: engine.source(spec_of(input, opts), mtime.unwrap_or(opts.now)),
                    seekable: match input {
                        Input::Path(path) if seekable => Some(path.clone()),
                        _ => None,
                    },
                    stats_index: report.inputs.len(),
                    ahead: Default::default(),
                    line: Vec::new(),
                    received: mtime.unwrap_or(opts.now),
                    error: None,
                };
                let format = if evtx {
                    Format::Windows
                } else {
                    detect(&mut stream, opts)
                };
                stats.format = Some(format);
                stream.source.set_format(format);
                report.inputs.push(stats);
                streams.push(stream);
            }
            Err(err) => {
                stats.error = Some(InputError::Open(err.to_string()));
                report.inputs.push(stats);
            }
        }
    }

    let mut sink = Collect::default();
    let clocks: Vec<_> = streams.iter().map(|s| s.source.clock()).collect();
    let indexes: Vec<usize> = streams.iter().map(|s| s.stats_index).collect();
    let jobs = opts.jobs.max(1);
    let mut finished: Vec<(usize, LineStats, Option<InputError>)> = Vec::new();
    std::thread::scope(|scope| {
        let queue = Arc::new(pieces::Queue::new(streams.len(), 2 * jobs));
        let mut feeds: Vec<Option<Feed>> = streams.iter().map(|_| None).collect();
        let mut whole: Vec<(usize, Stream)> = Vec::new();
        for (i, stream) in streams.into_iter().enumerate() {
            let plan = if jobs > 1 {
                pieces::plan(&stream, opts.piece_bytes)
            } else {
                None
            };
            match plan {
                Some(ranges) => {
                    let input = &inputs[stream.stats_index];
                    let mut make_source = || {
                        let mut source = engine.source(spec_of(input, opts), stream.received);
                        source.set_format(stream.source.format());
                        source
                    };
                    feeds[i] = Some(Feed::Pieces(Box::new(pieces::Chain::new(
                        i,
                        &queue,
                        &stream,
                        ranges,
                        &mut make_source,
                    ))));
                }
                None => whole.push((i, stream)),
            }
        }
        if queue.has_work() {
            for _ in 0..jobs {
                let queue = queue.clone();
                let mut matcher = matcher_for(&engine, opts);
                scope.spawn(move || pieces::work(&queue, &mut matcher, opts));
            }
        }

        // Inputs read whole: on this thread, or a few per thread (round robin).
        let threads = jobs.min(whole.len());
        let mut handles = Vec::new();
        if threads <= 1 {
            for (i, stream) in whole {
                feeds[i] = Some(Feed::Local(Box::new(stream), matcher_for(&engine, opts)));
            }
        } else {
            let mut groups: Vec<Vec<(usize, Stream)>> = (0..threads).map(|_| Vec::new()).collect();
            for (n, (i, stream)) in whole.into_iter().enumerate() {
                groups[n % threads].push((i, stream));
            }
            for group in groups {
                let mut live = Vec::new();
                for (i, stream) in group {
                    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Matched>>(8);
                    feeds[i] = Some(Feed::Remote(rx, Default::default()));
                    live.push((stream, tx));
                }
                let mut matcher = matcher_for(&engine, opts);
                handles.push(scope.spawn(move || serve_whole(live, &mut matcher, opts)));
            }
        }
        let mut feeds: Vec<Feed> = feeds
            .into_iter()
            .map(|feed| feed.expect("every input has a feed"))
            .collect();
        merge(
            &mut engine,
            rules,
            &clocks,
            &indexes,
            &mut feeds,
            &mut sink,
            &mut report,
            opts,
        );
        for handle in handles {
            finished.extend(handle.join().expect("a scan thread panicked"));
        }
        for feed in feeds {
            match feed {
                Feed::Local(stream, _) => {
                    finished.push((stream.stats_index, stream.source.stats, stream.error));
                }
                Feed::Pieces(chain) => {
                    let (index, counts, error, pieces) = chain.finish();
                    report.inputs[index].pieces = pieces;
                    finished.push((index, counts, error));
                }
                Feed::Remote(..) => {}
            }
        }
    });
    for (index, counts, error) in finished {
        report.inputs[index].counts = counts;
        if error.is_some() {
            report.inputs[index].error = error;
        }
    }
    report.matches = report.inputs.iter().map(|i| i.counts.matches).sum();
    report.correlation = engine.correlation_stats();
    report.incidents = sink.incidents;
    report.cases = engine.into_cases();
    // An incident names the case it ended in (cases bridged by a later incident became one).
    let case_of: HashMap<&str, &str> = report
        .cases
        .iter()
        .flat_map(|c| c.incidents.iter().map(|i| (i.id.as_str(), c.id.as_str())))
        .collect();
    for incident in &mut report.incidents {
        if let Some(case) = case_of.get(incident.id.as_str()) {
            incident.case_id = case.to_string();
        }
    }
    report
        .incidents
        .sort_by_key(|i| (i.first_seen, i.id.clone()));
    for case in &mut report.cases {
        case.revision = 1;
        case.merged_from.clear();
    }
    report.cases.sort_by_key(|c| (c.first_seen, c.id.clone()));
    report
}

/// Reads whole inputs on one thread, handing their matched lines over in batches.
///
/// One thread serves its inputs in turn, a bounded channel each, so a slow merge holds every
/// thread back instead of buffering whole files. It never blocks on one input's full channel: the
/// merge may be waiting for another input of this thread (an earlier time), so a full channel keeps
/// its batch for later and the thread serves the others; it pauses only when none can take one.
fn serve_whole(
    mut live: Vec<(Stream, std::sync::mpsc::SyncSender<Vec<Matched>>)>,
    matcher: &mut Matcher,
    opts: &ScanOptions,
) -> Vec<(usize, LineStats, Option<InputError>)> {
    let mut done = Vec::new();
    let mut pending: Vec<Option<Vec<Matched>>> = live.iter().map(|_| None).collect();
    while !live.is_empty() {
        let mut progressed = false;
        let mut i = 0;
        while i < live.len() {
            let (stream, tx) = &mut live[i];
            let batch = pending[i].take().unwrap_or_else(|| {
                let mut batch = Vec::with_capacity(BATCH);
                while batch.len() < BATCH {
                    match next_matched(stream, matcher, opts) {
                        Some(matched) => batch.push(matched),
                        None => break,
                    }
                }
                batch
            });
            let at_end = batch.len() < BATCH;
            let ended = if batch.is_empty() {
                true
            } else {
                match tx.try_send(batch) {
                    Ok(()) => {
                        progressed = true;
                        at_end
                    }
                    Err(std::sync::mpsc::TrySendError::Full(batch)) => {
                        pending[i] = Some(batch);
                        false
                    }
                    Err(std::sync::mpsc::TrySendError::Disconnected(_)) => true,
                }
            };
            if ended {
                let (stream, _) = live.swap_remove(i);
                pending.swap_remove(i);
                done.push((stream.stats_index, stream.source.stats, stream.error));
            } else {
                i += 1;
            }
        }
        if !progressed && !live.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    done
}

/// Where one input's matched lines come from: read on this thread, from the thread that reads
/// it whole, or from the threads that read its pieces.
enum Feed {
    Local(Box<Stream>, Matcher),
    Remote(
        std::sync::mpsc::Receiver<Vec<Matched>>,
        std::collections::VecDeque<Matched>,
    ),
    Pieces(Box<pieces::Chain>),
}

/// Matched lines a thread hands over at once.
const BATCH: usize = 256;

impl Feed {
    fn next(&mut self, opts: &ScanOptions) -> Option<Matched> {
        match self {
            Feed::Local(stream, matcher) => next_matched(stream, matcher, opts),
            Feed::Remote(rx, pending) => {
                if pending.is_empty() {
                    pending.extend(rx.recv().ok()?);
                }
                pending.pop_front()
            }
            Feed::Pieces(chain) => chain.next(),
        }
    }
}

/// Correlates the inputs' matched lines in event-time order (ties: the earlier input first); within
/// an input, lines keep their order.
#[allow(clippy::too_many_arguments)]
fn merge(
    engine: &mut Engine,
    rules: &RuleSet,
    clocks: &[crate::correlate::ClockId],
    indexes: &[usize],
    feeds: &mut [Feed],
    sink: &mut Collect,
    report: &mut ScanReport,
    opts: &ScanOptions,
) {
    let mut heads: Vec<Option<Matched>> = feeds.iter_mut().map(|f| f.next(opts)).collect();
    while let Some(pick) = (0..heads.len())
        .filter(|&i| heads[i].is_some())
        .min_by_key(|&i| (heads[i].as_ref().map(|m| m.ts), i))
    {
        let matched = heads[pick].take().expect("picked a head");
        if opts.keep_matches {
            let source = report.inputs[indexes[pick]].source.clone();
            // A `requires` rule's pattern alone (any accepted login) is no finding: it means
            // something only after the other rule's incident, which is correlation's to judge.
            for hit in matched
                .hits
                .iter()
                .filter(|h| rules.rule(h.rule).requires.is_none())
            {
                report.hits.push(MatchRecord {
                    source: source.clone(),
                    line: matched.line_no,
                    ts: matched.ts,
                    rule_id: rules.rule(hit.rule).id.clone(),
                    fields: hit.captured.iter().cloned().collect(),
                    text: hit.evidence.line.clone(),
                });
            }
        }
        engine.correlate(clocks[pick], matched, sink);
        heads[pick] = feeds[pick].next(opts);
    }
}

/// A matcher for `engine`'s rules that hands each hit's extracted fields on only when
/// `--matches` prints them.
fn matcher_for(engine: &Engine, opts: &ScanOptions) -> Matcher {
    let matcher = engine.matcher();
    if opts.keep_matches {
        matcher
    } else {
        matcher.without_captured()
    }
}

/// Reads the stream's lines until one matches a rule; `None` at its end (or a read error, recorded).
fn next_matched(stream: &mut Stream, matcher: &mut Matcher, opts: &ScanOptions) -> Option<Matched> {
    loop {
        let before = stream.source.stats.bytes;
        let len = advance(stream, opts)?;
        let line = std::mem::take(&mut stream.line);
        let matched = matcher.match_line(&mut stream.source, &line, len, stream.received);
        stream.line = line;
        if let Some(progress) = &opts.progress {
            progress.fetch_add(stream.source.stats.bytes - before, Ordering::Relaxed);
        }
        if matched.is_some() {
            return matched;
        }
    }
}

/// Reads ahead and picks the input's format (or takes the one given).
fn detect(stream: &mut Stream, opts: &ScanOptions) -> Format {
    let mut buf = Vec::new();
    while stream.ahead.len() < DETECT_LINES {
        match read_capped_line(&mut stream.reader, &mut buf, opts.max_line_bytes) {
            Ok(Some(len)) => stream.ahead.push_back((std::mem::take(&mut buf), len)),
            Ok(None) => break,
            Err(err) => {
                stream.error = Some(read_error(&err));
                break;
            }
        }
    }
    if opts.format != Format::Auto {
        return opts.format;
    }
    let prepared: Vec<_> = stream
        .ahead
        .iter()
        .map(|(line, _)| prepare_line(line, opts.max_line_bytes))
        .collect();
    let sample: Vec<&str> = prepared
        .iter()
        .map(|l| l.text.as_ref())
        .filter(|l| !l.trim().is_empty())
        .collect();
    detect_format(&sample)
}

fn read_error(err: &io::Error) -> InputError {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        InputError::GzipTruncated
    } else {
        InputError::Read(err.to_string())
    }
}

/// Moves to the next line: its full length, `None` at the end of the input (or after a read error,
/// which is recorded).
fn advance(stream: &mut Stream, opts: &ScanOptions) -> Option<usize> {
    if stream.error.is_some() && stream.ahead.is_empty() {
        return None;
    }
    if let Some((line, len)) = stream.ahead.pop_front() {
        stream.line = line;
        return Some(len);
    }
    match read_capped_line(&mut stream.reader, &mut stream.line, opts.max_line_bytes) {
        Ok(Some(len)) => Some(len),
        Ok(None) => None,
        Err(err) => {
            stream.error = Some(read_error(&err));
            None
        }
    }
}
